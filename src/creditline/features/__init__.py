"""The feature store: one set of credit-profile features, computed in batch and online.

Definitions are written once (`domain/definitions.py`); the DuckDB and Spark batch
engines and the online engine each compile the same declarative specs, and a parity
test holds them to the same numbers.
"""
