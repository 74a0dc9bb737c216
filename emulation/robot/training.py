"""Robot Framework keywords for training runs (robot_tests/training.robot): a whole `tinytrain emulate`
job, then checks on its run record.

    *** Settings ***
    Library    emulation.robot.training.TrainingLibrary
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.job import EmulateConfig, FirmwareFault, emulate
from tinytrain.job.record import PHASES
from tinytrain.report import summary


class TrainingLibrary:
    """Robot Framework keywords for training runs (robot_tests/training.robot):

    Library    emulation.robot.training.TrainingLibrary
    Train On Board    m7    model=mcunet-5fps    scheme=paper:99kb    resolution=64    steps=140
    Measured SRAM Should Be At Most    262144
    """

    ROBOT_LIBRARY_SCOPE = "SUITE"

    def __init__(self) -> None:
        self.record: dict[str, Any] | None = None

    def _rec(self) -> dict[str, Any]:
        if self.record is None:
            raise AssertionError("no training run yet: use Train On Board first")
        return self.record

    def train_on_board(
        self,
        board: str,
        model: str = "mcunet-5fps",
        scheme: str = "paper:99kb",
        dataset: str = "faces",
        classes: int = 2,
        resolution: int = 64,
        steps: int | None = None,
        epochs: int = 1,
        lr: float = 0.002,
        max_test: int | None = None,
    ) -> dict[str, Any]:
        """Compile, build, run in QEMU, compare with the host reference; returns the run record."""
        from robot.api import logger

        cfg = EmulateConfig(
            model=model,
            scheme=scheme,
            dataset=dataset,
            classes=int(classes),
            resolution=int(resolution),
            board=board,
            steps=None if steps is None else int(steps),
            epochs=int(epochs),
            lr=float(lr),
            max_test=None if max_test is None else int(max_test),
            save_record=False,
        )
        self.record = emulate(cfg, progress=logger.info).record
        logger.info(summary(self.record))
        logger.info(json.dumps(self.record, indent=1))
        return self.record

    def plan_should_not_fit(
        self,
        board: str,
        model: str = "mcunet-5fps",
        scheme: str = "paper:99kb",
        resolution: int = 224,
        classes: int = 2,
    ) -> str:
        """Emulating this job fails before anything is built, with the planner's breakdown."""
        cfg = EmulateConfig(
            model=model,
            scheme=scheme,
            classes=int(classes),
            resolution=int(resolution),
            board=board,
            steps=1,
            save_record=False,
        )
        try:
            emulate(cfg)
        except FirmwareFault as exc:
            raise AssertionError(f"expected a planning error, got a firmware fault: {exc}") from None
        except TinytrainError as exc:
            msg = str(exc)
            if "does not fit" not in msg or "arena" not in msg:
                raise AssertionError(f"error without the breakdown: {msg}") from None
            return msg
        raise AssertionError("the job unexpectedly fit the board")

    def measured_sram_should_be_at_most(self, limit: int) -> int:
        total = int(self._rec()["sram"]["total"])
        if total > int(limit):
            raise AssertionError(
                f"measured SRAM {total} B > {int(limit)} B: {self._rec()['sram']['breakdown']}"
            )
        return total

    def measured_sram_should_be_close_to_predicted(self, tolerance: int = 8192) -> None:
        r = self._rec()
        meas, pred = int(r["sram"]["total"]), int(r["sram_predicted"]["total"])
        if abs(meas - pred) > int(tolerance):
            raise AssertionError(f"measured {meas} B vs predicted {pred} B differ by more than {tolerance} B")

    def loss_should_decrease(self) -> None:
        """The mean loss of the last third of the steps is below that of the first third."""
        losses = self._rec()["losses"]
        k = max(1, len(losses) // 3)
        first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
        if not last < first:
            raise AssertionError(f"loss did not decrease: first third {first:.4f}, last third {last:.4f}")

    def accuracy_should_not_drop(self) -> None:
        r = self._rec()
        if r["accuracy_after"] is None or r["accuracy_after"] < r["accuracy_before"]:
            raise AssertionError(f"accuracy {r['accuracy_before']} -> {r['accuracy_after']}")

    def run_should_match_the_host_reference(self) -> None:
        r = self._rec()
        if r["matched_reference"] is not True:
            raise AssertionError(
                f"device and host reference differ: "
                f"{ {k: v for k, v in r['match'].items() if k != 'reference_losses'} }"
            )

    def instructions_per_step_should_be_exact(self) -> dict[str, int]:
        """Per-phase counts from the plugin (flat phase markers), adding up to the step total."""
        r = self._rec()
        ips = r["instructions_per_step"]
        if r.get("instructions_source") != "plugin":
            raise AssertionError(f"instruction counts are not exact: source {r.get('instructions_source')}")
        if sum(ips[p] for p in PHASES) != ips["total"]:
            raise AssertionError(f"the phases do not add up to the total: {ips}")
        return ips

    def instructions_per_step_should_be_reported(self) -> dict[str, int]:
        ips = self._rec()["instructions_per_step"]
        if not ips or not all(ips.get(p, 0) > 0 for p in ("forward", "backward", "update", "total")):
            raise AssertionError(f"missing per-phase instruction counts: {ips}")
        return ips
