"""The ``bpfvm`` command line: one subcommand per module of this package.

Each command module exposes ``register(subparsers)`` (adding its parser with
``set_defaults(func=run)``) and ``run(args) -> int``.  :func:`main` turns
every :class:`~bpfvm.errors.BpfvmError` into a one-line message and its exit
code (2 for bad input, 1 for a program's failure); nothing a user can cause
ends in a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from bpfvm import __version__
from bpfvm.errors import BpfvmError

# Subcommand modules, in the order ``bpfvm --help`` lists them.  A module that
# is absent (a component not built yet) is skipped.
COMMANDS = ("demo", "asm", "cc", "disasm", "run", "verify", "conformance", "hooks", "header",
            "mm", "fuzz")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only the subcommand ``only`` (what a run of
    that command needs: the other modules are not imported)."""
    parser = argparse.ArgumentParser(
        prog="bpfvm",
        description="eBPF-like policy programs for a simulated memory manager: "
        "assemble, verify, run, attach.")
    parser.add_argument("--version", action="version", version=f"bpfvm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        try:
            module = importlib.import_module(f"bpfvm.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("bpfvm.cli."):
                continue
            raise
        module.register(sub)
    return parser


def entry() -> None:
    """The process entry (``bpfvm`` and ``python -m bpfvm``): :func:`main`'s code
    as the exit status.  An interrupt that reached an extension module while it
    was importing can leave CPython's "unhandled interrupt" mark set although
    :func:`main` handled it, and the interpreter would then end by SIGINT
    instead of 130; so an interrupted run ends here, after the exit handlers."""
    code = main()
    if code != 130:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:  # an interrupt while the subcommand's modules load ends as cleanly as a run's
        parser = build_parser(argv[0] if argv else None)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except BpfvmError as exc:
        _say(f"bpfvm: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("bpfvm: interrupted")
        return 130
    except MemoryError:
        _say("bpfvm: out of memory: the input asks for more than this machine can hold")
        return 2
    except OSError as exc:
        if not _stdout_failed(exc):
            raise
        _drop_stdout()
        if exc.errno != errno.EPIPE:  # a reader that went away needs no message
            _say(f"bpfvm: cannot write to standard output: {exc.strerror or exc}")
        return 2


def _say(message: str) -> None:
    try:
        print(message, file=sys.stderr)
    except OSError:
        pass


def _stdout_failed(exc: OSError) -> bool:
    """Whether ``exc`` came from writing standard output (a full disk, a
    closed pipe), as opposed to a file the command opened."""
    if exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG):
        return exc.filename is None
    return False


def _drop_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's own
    flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
