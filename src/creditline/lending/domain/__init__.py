"""The lending domain in plain Python: no frameworks, no I/O."""
