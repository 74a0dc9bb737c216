"""The keyboard corpus: shipped texts, the character vocabulary, the contiguous user split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinytrain.data import DataError
from tinytrain.data.text import (
    UNK,
    VOCAB,
    decode,
    encode,
    general_text,
    read_user_text,
    user_split,
    user_text,
)


def test_vocabulary_round_trip() -> None:
    assert len(VOCAB) == 97 and VOCAB[0] == "\n" and VOCAB[1] == " " and VOCAB[UNK] == "<unk>"
    ids = encode("Hi,\tthere\r\n\u201cquoted\u201d \u2014 ok\u00df")
    assert decode(ids) == 'Hi, there\n"quoted" - ok\ufffd' and ids[-1] == UNK and ids.dtype == np.int64


def test_shipped_texts_differ_in_style() -> None:
    g, u = general_text(), user_text()
    assert len(g) > 400_000 and 5_000 < len(u) < 100_000
    assert "Licensee" in u and "Licensee" not in g  # legal English vs Python's help texts
    assert (encode(g) == UNK).mean() < 1e-4


def test_user_split_is_contiguous() -> None:
    ids = np.arange(100)
    a, b = user_split(ids, 0.7)
    assert a.tolist() == list(range(70)) and b.tolist() == list(range(70, 100))


def test_bad_user_text(tmp_path: Path) -> None:
    (tmp_path / "short.txt").write_text("too short")
    with pytest.raises(DataError, match="short.txt: only 9 characters"):
        read_user_text(tmp_path / "short.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad" * 100)
    with pytest.raises(DataError, match="bin.txt: unreadable text file"):
        read_user_text(tmp_path / "bin.txt")
