"""tinytrain: compile int8 networks + sparse-update schemes into Cortex-M training firmware."""

from pathlib import Path

__version__ = "0.1.0"

#: Repository root (the package is installed editable; firmware/ and results/ live beside it).
REPO_ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO_ROOT / "firmware"
RESULTS_DIR = REPO_ROOT / "results"


class TinytrainError(Exception):
    """An error meant for the user: the CLI prints its message (no traceback) and exits non-zero."""

    exit_code = 2
