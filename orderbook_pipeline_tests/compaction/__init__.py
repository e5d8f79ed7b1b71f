"""Silver compaction and gap windows."""
