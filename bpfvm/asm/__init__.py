"""The text side: grammar, both syntaxes, assembler, disassembler, sections."""
