"""Random kills leave no truncated output and no child process: a modest number here; the >= 100-kill
campaign is `pytest -m slow tests/reliability/test_kills.py` (its numbers are in docs/reliability.md)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.emulation.conftest import needs_qemu

from .kills import Tally, kill_atomic_writer, kill_bench, kill_emulate


def _assert_clean(t: Tally) -> None:
    assert not t.truncated, t.truncated
    assert not t.survivors, t.survivors


def test_random_kills_of_an_atomic_writer(tmp_path: Path) -> None:
    t = kill_atomic_writer(tmp_path, 12, random.Random(1))
    _assert_clean(t)
    assert t.kills == 12 and t.files_checked >= 12


@pytest.mark.qemu
@needs_qemu
def test_random_kills_of_emulate(tmp_path: Path) -> None:
    t = kill_emulate(tmp_path, 1, random.Random(2))
    _assert_clean(t)
    assert t.files_checked >= 5  # the calibration run's report, record, plots and parameters


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_kill_campaign(tmp_path: Path) -> None:
    """>= 100 random kills (SIGINT, SIGTERM, SIGKILL): the atomic writer, `tinytrain emulate` and
    `tinytrain bench`. Writes the tally to $TT_KILL_CAMPAIGN_OUT when set."""
    rng = random.Random(int(os.environ.get("TT_KILL_SEED", "2026")))
    total = Tally()
    parts = {
        "atomic writer": kill_atomic_writer(tmp_path / "a", 60, rng),
        "emulate": kill_emulate(tmp_path / "e", 32, rng),
        "bench": kill_bench(tmp_path / "b", 10, rng),
    }
    for t in parts.values():
        total.merge(t)
    doc = {k: t.__dict__ for k, t in {**parts, "total": total}.items()}
    if os.environ.get("TT_KILL_CAMPAIGN_OUT"):
        Path(os.environ["TT_KILL_CAMPAIGN_OUT"]).write_text(json.dumps(doc, indent=1))
    _assert_clean(total)
    assert total.kills >= 100
