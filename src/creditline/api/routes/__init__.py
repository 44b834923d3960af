"""`/v1` routers, one module per capability."""
