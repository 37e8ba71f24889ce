"""The studies: Contiguitas (unmovable region) and pluggable page tables."""
