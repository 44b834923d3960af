"""The HTTP entry point: FastAPI routes over the capabilities' services, no business rules."""
