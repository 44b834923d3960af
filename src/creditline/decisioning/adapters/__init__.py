"""Adapters of decisioning: the zen-engine policy evaluator."""
