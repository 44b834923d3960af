"""The command line: `creditline …`, one command group per capability."""
