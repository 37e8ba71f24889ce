"""Errors a user can cause.  Each says where and what; the CLI prints them
without a traceback.  Anything else that escapes is a bug of ours."""

from __future__ import annotations


class BpfvmError(Exception):
    """Base of every error caused by user input (bad file, bad program...)."""

    exit_code = 2


class BytecodeError(BpfvmError):
    """Malformed bytecode: ``pc N: message``."""

    def __init__(self, pc: int, message: str) -> None:
        super().__init__(f"pc {pc}: {message}")
        self.pc = pc
        self.message = message


class BytecodeErrors(BpfvmError):
    """Several bytecode errors found in one program, reported together."""

    def __init__(self, errors: list[BytecodeError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class VmFault(BpfvmError):
    """A run-time fault of a program: bad memory access, budget exhausted...

    ``pc`` is the faulting instruction.  Exit code 1: the program, not the
    command line, was at fault.
    """

    exit_code = 1

    def __init__(self, pc: int, message: str) -> None:
        super().__init__(f"pc {pc}: {message}")
        self.pc = pc
        self.message = message
