"""Scoring adapters: the file-system model registry."""
