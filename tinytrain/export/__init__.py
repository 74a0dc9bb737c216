"""Out of the emulator: `tinytrain export` (a standalone C training library with learned-state persistence,
docs/export.md), `tinytrain powercut` (fault injection on that persistence) and `save_model` (the adapted
model back out as a model directory). Submodules are imported lazily (the CLI loads only what it runs)."""

from __future__ import annotations

from typing import Any

__all__ = ["ExportConfig", "export_library", "save_model"]


def __getattr__(name: str) -> Any:
    if name == "save_model":
        from tinytrain.export.model_out import save_model

        return save_model
    if name == "export_library":
        from tinytrain.export.bundle import export_library

        return export_library
    if name == "ExportConfig":
        from tinytrain.export.config import ExportConfig

        return ExportConfig
    raise AttributeError(f"module 'tinytrain.export' has no attribute {name!r}")
