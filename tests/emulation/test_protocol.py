from __future__ import annotations

from emulation import protocol

UART = """TT {"ev":"boot","board":"m7","clock_hz":216000000}\r
hello, free text\r
TT {"ev":"phase","name":"forward","instr":1200,"depth":1}\r
TT {"ev":"phase","name":"step","instr":5000,"depth":0}\r
TT {"ev":"metric","name":"loss","value":0.25}\r
TT {"ev":"metric","name":"loss","value":0.125}\r
TT {not json\r
TT [1,2]
TT {"ev":"exit","status":0,"instr":9000,"stack_hw":512,"stack_size":4096}\r
"""


def test_parse_line() -> None:
    assert protocol.parse_line("hello") is None
    assert protocol.parse_line("TTX {}") is None
    assert protocol.parse_line('TT {"ev":"metric","name":"a","value":1}\r\n') == {
        "ev": "metric",
        "name": "a",
        "value": 1,
    }
    assert protocol.parse_line('TT {"x":1}') == {"x": 1, "ev": "data"}
    assert protocol.parse_line("TT {oops")["ev"] == "malformed"  # type: ignore[index]


def test_parse_output_metrics_phases() -> None:
    events = protocol.parse_output(UART)
    assert [e["ev"] for e in events] == [
        "boot",
        "phase",
        "phase",
        "metric",
        "metric",
        "malformed",
        "malformed",
        "exit",
    ]
    assert protocol.metrics(events) == {"loss": 0.125}
    assert protocol.phases(events) == [
        {"name": "forward", "instr": 1200, "depth": 1},
        {"name": "step", "instr": 5000, "depth": 0},
    ]
    assert protocol.last(events, "exit")["stack_hw"] == 512  # type: ignore[index]
    assert protocol.last(events, "fault") is None
