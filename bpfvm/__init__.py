"""bpfvm: eBPF-like programs for programmable memory management.

The toolchain: the ISA table (:mod:`bpfvm.isa`), instruction words
(:mod:`bpfvm.isa.insn`), programs (:mod:`bpfvm.program`), helper and hook
records, the assembler and disassembler, maps, the reference interpreter and
the llvmlite JIT.
"""

__version__ = "0.1.0"
