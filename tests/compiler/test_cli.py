"""`tinytrain compile`."""

from __future__ import annotations

import json

from tinytrain.cli import main


def test_compile_json_and_out_dir(tmp_path, capsys):
    rc = main(
        [
            "compile",
            "--model",
            "proxyless-w0.3",
            "--scheme",
            "paper:98kb",
            "--classes",
            "10",
            "--board",
            "m7",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["sram"]["total"] == sum(v for k, v in doc["sram"].items() if k != "total")
    assert doc["sram"]["arena"] > 0 and doc["ops"] > 100
    assert doc["scheme"]["name"] == "paper:98kb" and doc["scheme"]["bias_last_n"] == 25
    prog = json.loads((tmp_path / "program.json").read_text())
    assert len(prog["steps"]) == doc["ops"] and prog["num_classes"] == 10
    assert json.loads((tmp_path / "plan.json").read_text())["total"] == doc["sram"]["total"]
    assert (tmp_path / "plan.txt").read_text().startswith("memory plan")


def test_compile_readable_and_errors(tmp_path, capsys):
    assert (
        main(["compile", "--model", "mbv2-w0.35", "--scheme", "last", "--classes", "2", "--resolution", "96"])
        == 0
    )
    out = capsys.readouterr().out
    assert "total SRAM" in out and "scheme last" in out
    assert main(["compile", "--model", "mbv2-w0.35", "--scheme", "paper:1kb"]) == 2
    assert "unknown paper budget '1kb'" in capsys.readouterr().err
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"weights": [{"layer": "nope", "input_channel_ratio": 1}]}))
    assert main(["compile", "--model", "mbv2-w0.35", "--scheme", str(bad)]) == 2
    assert "unknown layer 'nope'" in capsys.readouterr().err
    # the full scheme at 128 px does not fit an M4: the error says by how much and what dominates
    assert main(["compile", "--model", "mcunet-5fps", "--scheme", "full", "--board", "m4"]) == 2
    err = capsys.readouterr().err
    assert "does not fit" in err and "bytes over" in err and "largest:" in err
