"""Scoring: from features to a calibrated probability of default, a 350–950 score and reasons.

`training/` fits models (optbinning scorecard, monotone LightGBM) and writes a versioned
artefact folder; `serving` reads an artefact and scores without importing any training
library; `adapters/file_registry` keeps artefacts and the champion/challenger roles.
"""
