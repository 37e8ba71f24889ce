"""Page tables behind one PTE interface: radix, program-defined tables, TLB and walk caches."""
