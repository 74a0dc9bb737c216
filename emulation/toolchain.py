"""Finding the external tools (QEMU, the Arm GCC toolchain + newlib, host gcc) and saying how to install
what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinytrain import TinytrainError

ARM_GCC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
HOST_CC = "gcc"

#: Debian package providing each tool.
APT_PACKAGES = {
    QEMU: "qemu-system-arm",
    ARM_GCC: "gcc-arm-none-eabi",
    "newlib": "libnewlib-arm-none-eabi",
    HOST_CC: "gcc",
}


def install_command(*tools: str) -> str:
    """The apt-get command that installs the Debian packages providing `tools` (sudo unless root)."""
    pkgs = " ".join(dict.fromkeys(APT_PACKAGES[t] for t in tools))
    sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install -y --no-install-recommends {pkgs}"


class ToolMissing(TinytrainError):
    def __init__(self, tool: str, what: str = "") -> None:
        self.tool = tool
        super().__init__(f"{what or tool} not found; install it with:\n  {install_command(tool)}")


def find_tool(tool: str) -> str:
    """Absolute path of `tool` on PATH, or ToolMissing (with the apt command)."""
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(tool)
    return path


def newlib_libc(cflags: tuple[str, ...] = ()) -> Path | None:
    """The newlib libc.a the Arm GCC would link for `cflags`, or None when newlib is not installed."""
    gcc = shutil.which(ARM_GCC)
    if gcc is None:
        return None
    out = subprocess.run([gcc, *cflags, "-print-file-name=libc.a"], capture_output=True, text=True).stdout
    p = Path(out.strip())
    return p if p.is_absolute() and p.exists() else None


@dataclass
class ToolInfo:
    name: str
    path: str | None
    version: str | None
    ok: bool
    note: str = ""


def tool_version(tool: str) -> ToolInfo:
    path = shutil.which(tool)
    if path is None:
        return ToolInfo(tool, None, None, False)
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return ToolInfo(tool, path, None, False, str(exc))
    first = out.splitlines()[0].strip() if out else "?"
    return ToolInfo(tool, path, first, True)
