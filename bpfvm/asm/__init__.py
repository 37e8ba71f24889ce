"""The text side: grammar, both syntaxes, assembler, disassembler, sections;
clang-built BPF objects (ELF, BTF) and the C header they include."""
