"""The reference interpreter: every access checked, the oracle for the JIT."""
