"""The host-native build reads the C runtime from tinytrain.FIRMWARE_DIR (checkout: firmware/; wheel:
tinytrain/firmware/), never from a path relative to the package's parent folder (.ci/wheel checks the
installed case)."""

from __future__ import annotations

from tinytrain import FIRMWARE_DIR, native


def test_runtime_dir_follows_firmware_dir() -> None:
    assert native.RUNTIME_DIR == FIRMWARE_DIR / "runtime"
    assert (native.RUNTIME_DIR / "tt_kernels.h").is_file()
    assert native._sources(), "no runtime sources found"
    assert all(p.parent == native.RUNTIME_DIR for p in native._sources())
