"""Plain-Python core of the feature store: the input contract, the specs, the online state."""
