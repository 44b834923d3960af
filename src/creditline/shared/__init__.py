"""The shared kernel: money, time, ids and errors that every capability speaks.

Nothing here does I/O or imports a framework (an import-linter contract keeps it so).
"""
