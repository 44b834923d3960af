"""SQL storage and the set-based end-of-day job of the lending capability."""
