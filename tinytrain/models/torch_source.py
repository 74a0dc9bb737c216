"""`module:function` -> (PyTorch model, calibration batch): the command line's way to a PyTorch model.

`module` is a module importable from the current directory (`mypkg.nets`) or a Python file
(`path/to/nets.py`); `function` takes no arguments and returns `(model, calibration)`: an `nn.Module` and a
batch `[N, C, H, W]` / `[N, C, L]` (float in the model's input units, or int8). Nothing is unpickled: the
user's own code builds the model (and loads its weights, e.g. `torch.load(..., weights_only=True)`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError

_SPEC = re.compile(r"^(?P<module>.+):(?P<func>[A-Za-z_][A-Za-z0-9_]*)$")


def is_torch_spec(text: str) -> bool:
    """True for `module:function` / `file.py:function` (and not an existing file such as `C:model.onnx`)."""
    m = _SPEC.match(text)
    return bool(m) and not Path(text).exists() and not text.lower().endswith((".tflite", ".onnx"))


def _load_module(mod: str) -> Any:
    if mod.endswith(".py") or "/" in mod or "\\" in mod:
        path = Path(mod)
        if not path.is_file():
            raise TinytrainError(f"{mod}: no such Python file")
        name = "_tinytrain_user_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise TinytrainError(f"{mod}: cannot load it as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))  # its own sibling imports
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.resolve().parent))
        return module
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        if exc.name and mod.startswith(exc.name):
            raise TinytrainError(
                f"{mod}: no module {exc.name!r} importable from {cwd} (give a module path or a .py file)"
            ) from None
        raise
    finally:
        if added:
            sys.path.remove(cwd)


def load_torch_source(spec: str) -> tuple[Any, Any, str]:
    """Call `module:function`; returns (model, calibration, the function's name). User errors -> one line.
    What the user's code prints goes to stderr (stdout carries the import summary, or its JSON)."""
    with contextlib.redirect_stdout(sys.stderr):
        return _load(spec)


def _load(spec: str) -> tuple[Any, Any, str]:
    m = _SPEC.match(spec)
    if not m:
        raise TinytrainError(f"{spec}: expected module:function or path/to/file.py:function")
    mod, func = m.group("module"), m.group("func")
    try:
        module = _load_module(mod)
    except TinytrainError:
        raise
    except BaseException as exc:  # noqa: BLE001  (the user's module: any error, even SystemExit)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise TinytrainError(f"{spec}: importing {mod} failed: {type(exc).__name__}: {_first(exc)}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise TinytrainError(f"{spec}: module {mod} has no function {func!r}")
    try:
        result = fn()
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise TinytrainError(
            f"{spec}: calling {func}() failed: {type(exc).__name__}: {_first(exc)}"
        ) from None
    import torch

    if not (
        isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[0], torch.nn.Module)
    ):
        raise TinytrainError(
            f"{spec}: {func}() must return (model, calibration_batch): an nn.Module and a tensor or array "
            f"[N, C, H, W] / [N, C, L]; it returned {type(result).__name__}"
        )
    return result[0], result[1], func


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"
