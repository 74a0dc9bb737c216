"""emulate's live display: the firmware's step events reach a (done, total) hook; the CLI draws a rich bar on
stderr when it is a terminal and prints the plain lines when it is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compiler.helpers import tiny_graph
from tinytrain.job.target import EventLog


def test_every_step_event_reaches_the_hook_and_the_lines_stay():
    seen: list[tuple[int, int]] = []
    said: list[str] = []
    log = EventLog(said.append, n_steps=3, n_train=2, on_step=lambda d, t: seen.append((d, t)))
    for i, loss in enumerate((0.9, 0.5, 0.25)):
        log({"ev": "step", "i": i, "loss": loss})
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [m.split()[1] for m in said] == ["1/3", "2/3", "3/3"]  # the text lines are unchanged
    assert len(log.events) == 3


def _argv(tmp_path: Path) -> list[str]:
    model = tmp_path / "tiny_ir"
    tiny_graph().save(model)
    return [
        "emulate", "--model", str(model), "--scheme", "last", "--dataset", "faces", "--classes", "2",
        "--resolution", "8", "--board", "m7", "--host", "--steps", "6", "--max-test", "4",
        "--no-report", "--no-save",
    ]  # fmt: skip


@pytest.mark.parametrize("live", [True, False])
def test_emulate_draws_a_bar_only_when_live(tmp_path, monkeypatch, capsys, live):
    from tinytrain import progress
    from tinytrain.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(progress, "live_default", lambda quiet=False: live and not quiet)
    assert main(_argv(tmp_path)) == 0
    out, err = capsys.readouterr()
    assert "host match    yes" in out
    if live:  # the bar (final state) and the text lines go to stderr; stdout keeps the summary only
        assert "training steps" in err and "6/6" in err
        assert "step 6/6" in err and "step 6/6" not in out
    else:  # not a terminal: the plain lines on stdout, nothing drawn
        assert "step 6/6" in out and "training steps" not in err
