"""Robot Framework keyword library for the emulated boards.

    *** Settings ***
    Library    emulation.robot.EmulationLibrary

Keywords act on the last run unless given a record. Every run saves its record as JSON in its run
directory (logged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tinytrain import TinytrainError, output_dir

from .. import selftest
from ..build import build_firmware
from ..runner import RunRecord, run_elf


class EmulationLibrary:
    ROBOT_LIBRARY_SCOPE = "SUITE"

    def __init__(self, runs_dir: str | None = None) -> None:
        self.runs_dir = Path(runs_dir) if runs_dir else output_dir("results", "robot", "runs")
        self.last: RunRecord | None = None
        self._n = 0

    def _rec(self, record: RunRecord | None) -> RunRecord:
        r = record or self.last
        if r is None:
            raise AssertionError("no run yet: use Run On Board or Run Self Test first")
        return r

    def _run_dir(self, label: str) -> Path:
        self._n += 1
        return self.runs_dir / f"{self._n:03d}-{label}"

    def _finish(self, rec: RunRecord) -> RunRecord:
        self.last = rec
        logger.info(rec.summary())
        logger.info(f"record: {rec.run_dir}/record.json")
        return rec

    # ---- building ---------------------------------------------------------------------------------

    @keyword("Build Firmware")
    def build_firmware_kw(self, board: str, *sources: str, **defines: str) -> str:
        """Build `sources` for `board` (defines as NAME=value); returns the ELF path."""
        res = build_firmware(board, list(sources), defines=defines or None, name=Path(sources[0]).stem)
        logger.info(f"built {res.elf}: {res.memory.to_dict()}")
        return str(res.elf)

    @keyword("Build Self Test")
    def build_self_test(self, board: str, mode: str = "normal") -> str:
        return str(selftest.build(board, mode).elf)

    @keyword("Build Self Test Should Fail With")
    def build_self_test_should_fail(self, board: str, mode: str, expected: str) -> str:
        """Building fails with a TinytrainError containing `expected`; returns the message."""
        try:
            selftest.build(board, mode)
        except TinytrainError as exc:
            msg = str(exc)
            logger.info(msg)
            if expected not in msg:
                raise AssertionError(f"build error {msg!r} does not contain {expected!r}") from None
            if "region `" in msg:
                raise AssertionError(f"raw linker error leaked: {msg}") from None
            return msg
        raise AssertionError(f"building self-test `{mode}` for {board} unexpectedly succeeded")

    # ---- running ----------------------------------------------------------------------------------

    @keyword("Run On Board")
    def run_on_board(self, elf: str, board: str, timeout: float = 30.0, profile: bool = False) -> RunRecord:
        rd = self._run_dir(f"{Path(elf).stem}-{board}")
        return self._finish(run_elf(elf, board, timeout=float(timeout), profile=bool(profile), run_dir=rd))

    @keyword("Run Self Test")
    def run_self_test(
        self, board: str, mode: str = "normal", timeout: float = 30.0, profile: bool = False
    ) -> RunRecord:
        rd = self._run_dir(f"selftest-{mode}-{board}")
        return self._finish(
            selftest.run(board, mode, timeout=float(timeout), profile=bool(profile), run_dir=rd)
        )

    # ---- checks -----------------------------------------------------------------------------------

    @keyword("Status Should Be")
    def status_should_be(self, status: str, record: RunRecord | None = None) -> None:
        r = self._rec(record)
        if r.status != status:
            raise AssertionError(f"status is {r.status!r}, expected {status!r}\n{r.message}")

    @keyword("Exit Code Should Be")
    def exit_code_should_be(self, code: int, record: RunRecord | None = None) -> None:
        r = self._rec(record)
        if r.exit_code != int(code):
            raise AssertionError(f"exit code {r.exit_code}, expected {code}\n{r.message}")

    @keyword("Exit Code Should Not Be")
    def exit_code_should_not_be(self, code: int, record: RunRecord | None = None) -> None:
        r = self._rec(record)
        if r.exit_code == int(code):
            raise AssertionError(f"exit code is {code}\n{r.message}")

    @keyword("Output Should Contain")
    def output_should_contain(self, text: str, record: RunRecord | None = None) -> None:
        r = self._rec(record)
        out = Path(r.uart_log).read_text(errors="replace") if r.uart_log else ""
        if text not in out:
            raise AssertionError(
                f"UART output does not contain {text!r}; last lines:\n" + "\n".join(r.uart_tail)
            )

    @keyword("Message Should Contain")
    def message_should_contain(self, text: str, record: RunRecord | None = None) -> None:
        """The run's report (timeout, fault, failure message) contains `text`."""
        r = self._rec(record)
        if text not in r.message:
            raise AssertionError(f"report does not contain {text!r}:\n{r.message}")

    @keyword("Get Metric")
    def get_metric(self, name: str, record: RunRecord | None = None) -> Any:
        r = self._rec(record)
        if name not in r.metrics:
            raise AssertionError(f"no metric {name!r}; have {sorted(r.metrics)}")
        return r.metrics[name]

    @keyword("Metric Should Be")
    def metric_should_be(self, name: str, value: Any, record: RunRecord | None = None) -> None:
        got = self.get_metric(name, record)
        if str(got) != str(value) and not (_num(got) is not None and _num(got) == _num(value)):
            raise AssertionError(f"metric {name} = {got}, expected {value}")

    @keyword("Metric Should Be Below")
    def metric_should_be_below(self, name: str, limit: float, record: RunRecord | None = None) -> None:
        got = self.get_metric(name, record)
        if not float(got) < float(limit):
            raise AssertionError(f"metric {name} = {got}, not below {limit}")

    @keyword("Get Phase Instructions")
    def get_phase_instructions(self, name: str, record: RunRecord | None = None) -> int:
        try:
            return self._rec(record).phase(name)
        except KeyError as exc:
            raise AssertionError(str(exc)) from None

    @keyword("Phase Instructions Should Be Below")
    def phase_should_be_below(self, name: str, limit: int, record: RunRecord | None = None) -> None:
        n = self.get_phase_instructions(name, record)
        if not n < int(limit):
            raise AssertionError(f"phase {name}: {n} instructions, not below {limit}")

    @keyword("Peak SRAM Should Be Below")
    def peak_sram_should_be_below(self, limit: int, record: RunRecord | None = None) -> None:
        r = self._rec(record)
        if r.peak_sram is None:
            raise AssertionError(f"no peak SRAM measured (status {r.status})")
        logger.info(f"peak SRAM {r.peak_sram} B: {r.memory.breakdown if r.memory else ''}")
        if not r.peak_sram < int(limit):
            raise AssertionError(f"peak SRAM {r.peak_sram} B, not below {limit}")

    @keyword("Fault Report Should Mention")
    def fault_report_should_mention(self, text: str, record: RunRecord | None = None) -> None:
        r = self._rec(record)
        if r.fault is None:
            raise AssertionError(f"no fault report (status {r.status})")
        desc = r.fault.describe()
        logger.info(desc)
        if text not in desc:
            raise AssertionError(f"fault report does not mention {text!r}:\n{desc}")

    @keyword("Instruction Counts Should Be Identical")
    def instruction_counts_should_be_identical(self, first: RunRecord, second: RunRecord) -> None:
        a = (first.instructions, [(p["name"], p["instr"]) for p in first.phases])
        b = (second.instructions, [(p["name"], p["instr"]) for p in second.phases])
        if a != b:
            raise AssertionError(f"instruction counts differ:\n{a}\n{b}")
        if first.instructions is None:
            raise AssertionError("no instruction count in the records")

    @keyword("Save Record")
    def save_record(self, path: str, record: RunRecord | None = None) -> str:
        return str(self._rec(record).save(path))


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
