"""The LVM-like learned page table: index (:mod:`.index`), training
(:mod:`.fit`), leaf storage over several regions (:mod:`.space`) and the
table itself (:mod:`.table`)."""
