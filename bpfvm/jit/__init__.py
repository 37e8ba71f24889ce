"""The llvmlite JIT: lowering to LLVM IR, compile cache, native engine, checked mode."""
