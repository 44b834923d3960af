"""Adapters of the privacy capability: SQL storage and AES-GCM field encryption."""
