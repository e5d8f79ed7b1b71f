"""Benchmarks of the capture hot path and the stages after it (`make bench`; see README.md)."""
