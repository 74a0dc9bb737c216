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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinytrain", description=__doc__.splitlines()[0])
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
