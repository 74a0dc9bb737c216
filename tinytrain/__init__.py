"""tinytrain: compile int8 networks + sparse-update schemes into Cortex-M training firmware."""

from pathlib import Path

__version__ = "0.1.0"

#: The package's own directory (in a checkout: <repo>/tinytrain; installed: site-packages/tinytrain).
PACKAGE_DIR = Path(__file__).resolve().parent
_SOURCE_ROOT = PACKAGE_DIR.parent

#: True when tinytrain runs from its source checkout (editable install or PYTHONPATH): firmware/ lives beside
#: the package. An installed wheel carries the firmware as package data (tinytrain/firmware) instead.
FROM_CHECKOUT = (_SOURCE_ROOT / "firmware" / "runtime").is_dir() and (_SOURCE_ROOT / "setup.py").is_file()

#: The repository root in a checkout; installed, the current directory at import (never the installation).
#: Committed repository data (results/baseline.csv, bench/*.toml, results/evidence/) is read from here.
REPO_ROOT = _SOURCE_ROOT if FROM_CHECKOUT else Path.cwd()
#: C sources: the training runtime, the apps, the board files (read-only).
FIRMWARE_DIR = _SOURCE_ROOT / "firmware" if FROM_CHECKOUT else PACKAGE_DIR / "firmware"
#: The committed results of the checkout (read; outputs of a run go under `output_dir()`).
RESULTS_DIR = REPO_ROOT / "results"


def output_dir(*parts: str) -> Path:
    """Where a run writes when the user names no place: under the current directory (./build/...,
    ./results/...), never into the installation."""
    return Path.cwd().joinpath(*parts)


class TinytrainError(Exception):
    """An error meant for the user: the CLI prints its message (no traceback) and exits non-zero."""

    exit_code = 2
