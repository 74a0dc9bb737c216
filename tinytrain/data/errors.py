"""The one error type of the data loaders: a user's file is wrong, said in one line."""

from __future__ import annotations

from tinytrain import TinytrainError


class DataError(TinytrainError):
    """Bad input data. The message names the file and the folder, row or line, and what to do; the CLI prints
    it on one line and exits 2 (`TinytrainError.exit_code`)."""
