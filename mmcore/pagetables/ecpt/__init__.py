"""The ECPT-like elastic cuckoo page table: its host (:mod:`.table`), the
layouts of its entries (:mod:`.entries`) and its cuckoo walk caches (:mod:`.cwc`)."""
