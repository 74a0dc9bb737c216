"""The metrics protocol: firmware prints lines `TT {json}` on its UART (see firmware/include/tt_board.h);
everything else is free text. Each JSON object has an "ev" key: boot, phase, metric, fault, exit, error."""

from __future__ import annotations

import json
from typing import Any

PREFIX = "TT "


def parse_line(line: str) -> dict[str, Any] | None:
    """The event on a protocol line, None for free text. A malformed protocol line becomes
    {"ev": "malformed", "text": line} rather than an exception (a run's output is evidence, not input)."""
    line = line.strip("\r\n\0 ")
    if not line.startswith(PREFIX):
        return None
    body = line[len(PREFIX) :].strip()
    try:
        ev = json.loads(body)
    except json.JSONDecodeError:
        return {"ev": "malformed", "text": line}
    if not isinstance(ev, dict):
        return {"ev": "malformed", "text": line}
    ev.setdefault("ev", "data")
    return ev


def parse_output(text: str) -> list[dict[str, Any]]:
    """All events in UART output, in order."""
    events = []
    for line in text.splitlines():
        ev = parse_line(line)
        if ev is not None:
            events.append(ev)
    return events


def metrics(events: list[dict[str, Any]]) -> dict[str, Any]:
    """name -> value of the metric events (a later value of the same name wins)."""
    return {e["name"]: e.get("value") for e in events if e.get("ev") == "metric" and "name" in e}


def phases(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The phase events: {"name", "instr", "depth"} in the order they ended."""
    return [
        {"name": e["name"], "instr": int(e["instr"]), "depth": int(e.get("depth", 0))}
        for e in events
        if e.get("ev") == "phase" and "name" in e and "instr" in e
    ]


def last(events: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    for e in reversed(events):
        if e.get("ev") == kind:
            return e
    return None
