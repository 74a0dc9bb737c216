"""Tables on the terminal, drawn by rich: one call for every command that prints rows (`models`, `doctor`,
`calibrate`). Colour only on a terminal; piped or captured output is the same table in plain characters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def print_table(
    columns: Sequence[str | tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """Print `rows` under `columns` to stdout. A column is a header, or (header, "right") for numbers."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        title_justify="left",
        caption_justify="left",
    )
    for col in columns:
        name, justify = (col, "left") if isinstance(col, str) else col
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(str(c) for c in row))
    # a wide fallback width when not a terminal (pipes, CI logs, tests): rows are never cut or wrapped early
    Console(soft_wrap=False, width=None if _is_terminal() else 160).print(table)


def _is_terminal() -> bool:
    import sys

    return sys.stdout.isatty()
