"""`tinytrain emulate`'s former single module, kept importable: the job now lives in `tinytrain.job` (one
module per stage) and its summary in `tinytrain.report.summary`. New code imports from there."""

from __future__ import annotations

from typing import Any

from tinytrain.job.config import DEFAULTS, EmulateConfig, FirmwareFault, JobConfig, config_from_defaults
from tinytrain.job.firmware import APP_DIR, RUNTIME_DIR, build_board, build_host
from tinytrain.job.paths import MAIN_JOB_REPORT
from tinytrain.job.prepare import check_plan_fits, load_graph, make_job, plan_program
from tinytrain.job.record import (
    EVIDENCE_FIG9,
    PHASES,
    RECORD_FORMAT,
    estimate_cycles,
    estimate_step_cycles,
    evidence_quote,
    kernels_per_step,
    layers_per_step,
    measured_sram,
    step_instructions,
)
from tinytrain.job.reference import Baseline, Reference, run_baseline, run_reference
from tinytrain.job.run import RunResult, emulate
from tinytrain.job.target import fault_message, kernel_of, run_qemu, stream_process
from tinytrain.program import Program
from tinytrain.report.summary import summary

__all__ = [
    "APP_DIR",
    "DEFAULTS",
    "EVIDENCE_FIG9",
    "MAIN_JOB_REPORT",
    "PHASES",
    "RECORD_FORMAT",
    "RUNTIME_DIR",
    "Baseline",
    "EmulateConfig",
    "FirmwareFault",
    "JobConfig",
    "Reference",
    "RunResult",
    "build_board",
    "build_host",
    "check_plan_fits",
    "compile_program",
    "config_from_defaults",
    "emulate",
    "estimate_cycles",
    "estimate_step_cycles",
    "evidence_quote",
    "fault_message",
    "kernel_of",
    "kernels_per_step",
    "layers_per_step",
    "load_graph",
    "make_job",
    "measured_sram",
    "plan_program",
    "run_baseline",
    "run_qemu",
    "run_reference",
    "stream_process",
    "step_instructions",
    "summary",
]


def compile_program(
    graph: Any,
    scheme: Any,
    update_rule: str | None = None,
    momentum: float = 0.0,
    accumulate: int = 1,
    head_lr_scale: float = 1.0,
) -> Program:
    """The former signature: the four training options given one by one (tinytrain.job.prepare takes
    a CompileOptions)."""
    from tinytrain.compiler import DEFAULT_UPDATE_RULE, CompileOptions
    from tinytrain.job.prepare import compile_program as compile_with

    opts = CompileOptions(
        update_rule=update_rule or DEFAULT_UPDATE_RULE,
        momentum=momentum,
        accumulate=accumulate,
        head_lr_scale=head_lr_scale,
    )
    return compile_with(graph, scheme, opts)


def __getattr__(name: str) -> Any:
    if name == "TrainingLibrary":  # Robot Framework's keyword library: emulation.robot.training
        from emulation.robot.training import TrainingLibrary

        return TrainingLibrary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
