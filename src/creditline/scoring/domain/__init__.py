"""Plain-Python scoring rules: the score scale, the tiers and the reason codes."""
