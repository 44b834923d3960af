"""Feature engines and stores: DuckDB and Spark batch engines, in-process and Redis state."""
