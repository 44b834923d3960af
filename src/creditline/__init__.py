"""creditline: instant consumer credit lines, from behaviour data to a repaid loan.

The package is split by capability (privacy, lending, scoring, ...); each capability keeps
its rules in plain-Python `domain/` modules and talks to the outside through `ports.py`.
Entry points (`api`, `cli`) and `bootstrap` sit on top and hold no business rules.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("creditline")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
