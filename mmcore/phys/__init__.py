"""Physical memory: frames, zones, buddy allocator, watermarks, compaction,
regions, kernel allocations."""
