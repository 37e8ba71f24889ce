"""Virtual memory: processes and VMAs, page cache, LRU lists, reclaim."""
