"""Model training: optbinning scorecard and monotone LightGBM challenger (imports both)."""
