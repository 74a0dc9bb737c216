"""The keyboard corpus: general English that ships with Python, a user's text of another style, characters.

- **general text** (`general_text()`): every topic of `pydoc_data.topics` (the help texts of Python's
  `help()`, about 0.46 MB of technical English prose and grammar), in sorted topic order, joined by blank
  lines.
- **user text** (`user_text()`): the CPython licence file that ships with the interpreter,
  `<stdlib>/LICENSE.txt` (about 14 KB: the history of the software and the PSF / BeOpen / CNRI / CWI licence
  agreements): legal English ("Licensee", "hereby", "shall", all-capital disclaimers), clearly unlike the
  help texts. Any other file: `read_user_text(path)`.
- **vocabulary** (`VOCAB`): 97 characters: newline, the 95 printable ASCII characters (space .. `~`) and
  `UNK` (index 96) for anything else. Typographic quotes and dashes map to their ASCII forms first, tabs to
  a space, `\r` is dropped (`normalize_text`).
- **split of the user text** (`user_split`): contiguous, in reading order: the first `adapt` fraction is
  what the keyboard learns from, the last `test` fraction is held out, nothing shared.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np

from tinytrain.data.errors import DataError

VOCAB: list[str] = ["\n"] + [chr(c) for c in range(32, 127)] + ["<unk>"]
UNK = len(VOCAB) - 1
_INDEX = {ch: i for i, ch in enumerate(VOCAB[:-1])}
_ASCII = {
    "\u201c": '"',
    "\u201d": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
}


def normalize_text(text: str) -> str:
    for a, b in _ASCII.items():
        text = text.replace(a, b)
    return text.replace("\r", "").replace("\t", " ")


def encode(text: str) -> np.ndarray:
    """Text -> int64 token ids (after `normalize_text`)."""
    return np.fromiter((_INDEX.get(ch, UNK) for ch in normalize_text(text)), np.int64)


def decode(ids: np.ndarray) -> str:
    return "".join(VOCAB[int(i)] if int(i) != UNK else "\ufffd" for i in ids)


def general_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def user_text_path() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"


def read_user_text(path: str | Path) -> str:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: unreadable text file ({exc}); give a UTF-8 .txt file") from exc
    if len(text.strip()) < 200:
        raise DataError(f"{p}: only {len(text.strip())} characters; a user text needs at least 200")
    return text


def user_text() -> str:
    p = user_text_path()
    if not p.exists():
        raise DataError(f"{p}: this Python ships no LICENSE.txt; give a user text file instead")
    return read_user_text(p)


def user_split(ids: np.ndarray, adapt: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous split: (first `adapt` fraction, the rest)."""
    cut = int(round(len(ids) * adapt))
    return ids[:cut], ids[cut:]
