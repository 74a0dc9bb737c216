"""`tinytrain doctor`: checks the tools the emulated boards need (QEMU, arm-none-eabi-gcc + newlib, host
gcc for the TCG plugin), prints their versions, and when something is missing prints the exact apt
command and exits non-zero."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from tinytrain import TinytrainError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="check the toolchain, QEMU and the plugin build")
    p.add_argument("--no-plugin", action="store_true", help="skip building the QEMU plugin")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emulation import boards, plugin, toolchain
    from tinytrain.cli.table import print_table

    missing: list[str] = []
    checks: list[tuple[str, str, str]] = []

    def _line(ok: bool, name: str, detail: str) -> None:
        checks.append(("ok" if ok else "MISSING", name, detail))

    for tool in (toolchain.QEMU, toolchain.ARM_GCC, toolchain.HOST_CC):
        info = toolchain.tool_version(tool)
        _line(info.ok, tool, f"{info.version}  ({info.path})" if info.ok else "not on PATH")
        if not info.ok:
            missing.append(tool)
            if tool == toolchain.ARM_GCC:
                missing.append("newlib")  # a fresh install needs both packages

    if toolchain.ARM_GCC not in missing:
        m7 = boards.get_board(boards.DEFAULT_BOARD)
        libc = toolchain.newlib_libc(m7.cflags)
        _line(libc is not None, "newlib", str(libc) if libc else "libc.a not found for arm-none-eabi")
        if libc is None:
            missing.append("newlib")
        elif not _smoke_link(m7.cflags):
            _line(False, "arm link test", "could not link a minimal program with newlib-nano")
            missing.append("newlib")
    if toolchain.QEMU not in missing:
        machines = subprocess.run(
            [shutil.which(toolchain.QEMU) or toolchain.QEMU, "-machine", "help"],
            capture_output=True,
            text=True,
        ).stdout
        for b in boards.all_boards().values():
            has = b.qemu_machine in machines
            _line(has, f"board {b.name}", f"QEMU machine {b.qemu_machine}")
            if not has:
                missing.append(toolchain.QEMU)
    if toolchain.HOST_CC not in missing and not args.no_plugin:
        try:
            path = plugin.plugin_path()
            _line(True, "ttprof plugin", str(path))
        except TinytrainError as exc:
            _line(False, "ttprof plugin", str(exc).splitlines()[0])
            missing.append(toolchain.HOST_CC)

    print_table(["status", "check", "found"], checks, title="tinytrain doctor")
    if missing:
        tools = list(dict.fromkeys(missing))
        print("\nsomething is missing; install it with:")
        print(f"  {toolchain.install_command(*tools)}")
        return 1
    print("\nall good")
    return 0


def _smoke_link(cflags: tuple[str, ...]) -> bool:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "t.c"
        src.write_text(
            "#include <string.h>\nint main(void){char a[8],b[8]={1};memcpy(a,b,8);return a[0];}\n"
            "void _exit(int c){for(;;){(void)c;}}\n"
        )
        cmd = [
            gcc,
            *cflags,
            "--specs=nano.specs",
            "--specs=nosys.specs",
            str(src),
            "-o",
            str(Path(d) / "t.elf"),
        ]
        return subprocess.run(cmd, capture_output=True).returncode == 0
