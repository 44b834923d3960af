"""Batch jobs: wiring over the capabilities' services, dated and re-runnable."""
