"""Benchmarks: scripts that print tables (`python -m bench.NAME` or `python bench/NAME.py`)."""
