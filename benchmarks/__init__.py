"""Benchmarks: scripts that print a table and write benchmarks/results/*.json."""
