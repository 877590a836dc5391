"""sgm: an SHA-256d miner with a native core (see README.md)."""
from __future__ import annotations

#: The release, as `sgm --version` prints it; pyproject.toml's [project] version is the
#: same string (tests/test_metrics.py checks that they agree).
__version__ = "0.1.0"
