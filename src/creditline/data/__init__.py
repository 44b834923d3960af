"""Behaviour data: event schemas, ingestion, the population simulator, dataset loaders."""
