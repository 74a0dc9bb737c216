"""The `tinytrain` command. Each subcommand lives in its own module `tinytrain.cli.<name>` exposing
`register(subparsers)`; the module adds its parser and sets `func` (args -> exit code)."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from tinytrain import TinytrainError

#: Subcommand modules, in the order `tinytrain --help` lists them.
COMMANDS = [
    "doctor",
    "models",
    "importer",
    "infer",
    "compile",
    "emulate",
    "experiment",
    "search",
    "bench",
    "export",
    "powercut",
    "calibrate",
]


DESCRIPTION = """\
tinytrain: on-device training under 256 KB. Compiles an int8 network plus a sparse-update scheme into C
firmware that trains on Cortex-M, runs it on emulated boards (QEMU), and measures its memory, speed and
learning against a bit-exact host reference."""

EPILOG = """\
first steps:
  tinytrain doctor                                   are QEMU and the Arm toolchain here?
  tinytrain emulate --defaults                       the main job on the embedded default (m7)
  tinytrain import model.tflite --out my-model       your int8 .tflite / .onnx model
  tinytrain emulate --model my-model --dataset DIR --board m4 --steps 100
  tinytrain export --model my-model --scheme last --cpu cortex-m4 --out tt-lib

`tinytrain COMMAND --help` for each command. Exit status: 0 ok, 1 a check failed, 2 bad input (one line
on stderr naming what and where), 3 a firmware fault or timeout, 4 the emulator was killed."""


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    parser = argparse.ArgumentParser(
        prog="tinytrain",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    try:
        ver = version("tinytrain")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        ver = "unknown (not installed)"
    parser.add_argument("--version", action="version", version=f"tinytrain {ver}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tinytrain.cli.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet
            if exc.name == f"tinytrain.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tinytrain import children

    # SIGTERM/SIGHUP unwind like Ctrl-C; every child process (QEMU, workers) dies with this one
    children.install_signal_handlers()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TinytrainError as exc:
        print(f"tinytrain {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        children.kill_all()
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"tinytrain {args.command}: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + int(signum)


if __name__ == "__main__":
    sys.exit(main())
