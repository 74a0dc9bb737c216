"""A training job as stages (docs/architecture.md):

- `config`    JobConfig (= EmulateConfig): the job, with a nested CompileOptions; DEFAULTS, the default job
- `prepare`   model -> head -> scheme -> compile -> plan (`assemble`, the one job assembly), the data stream
- `firmware`  generated C + the training app + the runtime, built for a board or the host
- `target`    run on QEMU or the host, stream events, explain faults
- `reference` the host reference and the baseline scheme on the same stream, the device/host comparison
- `record`    accounting (SRAM, instructions, cycles) and the run record
- `run`       `emulate(cfg)`: the stages in order, under a lock on the job's build directory
- `paths`     where a job writes

The report (tinytrain.report) reads the record; it never imports the job.
"""

from tinytrain.job.config import DEFAULTS, EmulateConfig, FirmwareFault, JobConfig, config_from_defaults
from tinytrain.job.prepare import Assembly, assemble
from tinytrain.job.run import RunResult, emulate

__all__ = [
    "DEFAULTS",
    "Assembly",
    "EmulateConfig",
    "FirmwareFault",
    "JobConfig",
    "RunResult",
    "assemble",
    "config_from_defaults",
    "emulate",
]
