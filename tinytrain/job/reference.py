"""The host side of a job: the reference `Trainer` on the device's stream (what the firmware must match,
bit for bit), the baseline scheme trained on the same stream, and the comparison of device and reference."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tinytrain.codegen import datafile
from tinytrain.job.config import JobConfig
from tinytrain.job.prepare import assemble
from tinytrain.program import Program


class Reference:
    """The host reference `Trainer` on the same stream; filled in by `run_reference` (in a thread)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.preds_before: list[int] | None = None
        self.preds_after: list[int] | None = None
        self.params: dict[str, np.ndarray] = {}
        self.error: BaseException | None = None
        self.seconds = 0.0


def run_reference(program: Program, job: datafile.TrainingJob, evaluate: bool, ref: Reference) -> None:
    t0 = time.perf_counter()
    try:
        from tinytrain.reference.training import Trainer

        trainer = Trainer(program, seed=job.rng_seed)
        if evaluate:
            ref.preds_before = [trainer.predict(x) for x in job.x_test]
        for sample, label, lr in job.samples():
            ref.losses.append(float(np.float32(trainer.train_step(sample, label, lr))))
        if evaluate:
            ref.preds_after = [trainer.predict(x) for x in job.x_test]
        ref.params = {name: np.array(arr) for name, arr in trainer.parameters().items()}
    except BaseException as exc:  # reported in the record, never lost in the thread
        ref.error = exc
    ref.seconds = time.perf_counter() - t0


class Baseline:
    """Another scheme (the classifier-only `last` by default) trained on the host reference with the same
    samples, order and learning rates: the baseline the device run is compared with."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None


def run_baseline(graph: Any, cfg: JobConfig, job: datafile.TrainingJob, board: Any, base: Baseline) -> None:
    t0 = time.perf_counter()
    try:
        from tinytrain.reference.training import Trainer

        asm = assemble(graph, base.scheme, cfg.options, board=board)
        program, plan = asm.program, asm.plan
        assert plan is not None
        trainer = Trainer(program, seed=job.rng_seed)
        n = len(job.y_test)

        def acc() -> float | None:
            if not (cfg.evaluate and n):
                return None
            return (
                sum(int(trainer.predict(x) == int(y)) for x, y in zip(job.x_test, job.y_test, strict=True))
                / n
            )

        before = acc()
        own = cfg.baseline_lr
        losses = [
            float(np.float32(trainer.train_step(x, y, lr if own is None else own)))
            for x, y, lr in job.samples()
        ]
        base.result = {
            "scheme": base.scheme,
            "where": "host reference (same samples, order and learning rates as the device run)"
            if own is None
            else f"host reference (same samples and order as the device run, its own learning rate {own:g})",
            "lr": own,
            "accuracy_before": before,
            "accuracy_after": acc(),
            "losses": losses,
            "sram_predicted": int(plan.total),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    except BaseException as exc:  # reported in the record, never lost in the thread
        base.error = exc


def compare(
    ref: Reference,
    loss_bits: list[str],
    device_params: dict[str, np.ndarray],
    preds: dict[str, list[int] | None],
) -> tuple[dict[str, Any], bool]:
    """Device vs host reference: per-step losses bit-equal (float32), trained tensors identical, test
    predictions identical -> (the record's `match`, matched). A reference that failed matches nothing."""
    match: dict[str, Any] = {"checked": True}
    if ref.error is not None:
        match["error"] = f"{type(ref.error).__name__}: {ref.error}"
        return match, False
    ref_bits = [f"0x{int(np.float32(v).view(np.uint32)):08x}" for v in ref.losses]
    bad = [i for i, (a, b) in enumerate(zip(loss_bits, ref_bits, strict=False)) if a != b]
    match["losses"] = len(ref_bits) == len(loss_bits) and not bad
    match["first_loss_mismatch"] = bad[0] if bad else None
    bad_params = sorted(
        k for k in ref.params if k not in device_params or not np.array_equal(ref.params[k], device_params[k])
    )
    match["params"] = not bad_params and set(ref.params) == set(device_params)
    match["params_mismatched"] = bad_params[:10]
    match["predictions"] = preds.get("before") == ref.preds_before and preds.get("after") == ref.preds_after
    match["reference_losses"] = [float(v) for v in ref.losses]
    match["reference_seconds"] = round(ref.seconds, 3)
    return match, bool(match["losses"] and match["params"])


def baseline_entry(base: Baseline | None) -> dict[str, Any] | None:
    """The record's `baseline`: the result, or the scheme and its error."""
    if base is None:
        return None
    if base.result is not None:
        return base.result
    return {"scheme": base.scheme, "error": f"{type(base.error).__name__}: {base.error}"}
