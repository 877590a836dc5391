"""Shared test fixtures: the real-world vectors in tests/data.

tests/data holds verbatim copies of the project's reference vectors (real Bitcoin block
headers, real Stratum shares, merkle-root and midstate cases, each with its source; see
tests/data/README.md), so a clone of this repository runs its whole suite on its own.
The environment variable SGM_VECTORS points the fixtures at another copy instead (for
example the read-only ../shared/vectors the copies were taken from).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# the desktop app's tests run without a screen unless one is chosen (QT_QPA_PLATFORM=xcb
# with DISPLAY); pyqtgraph binds to PySide6, the only Qt binding sgm installs
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

DATA_DIR = Path(__file__).resolve().parent / "data"
VECTOR_FILES = ("headers.json", "stratum_shares.json", "aux_vectors.json")


def vectors_dir() -> Path:
    env = os.environ.get("SGM_VECTORS")
    path = Path(env) if env else DATA_DIR
    missing = [name for name in VECTOR_FILES if not (path / name).is_file()]
    if missing:
        where = "SGM_VECTORS" if env else "the repository's tests/data"
        pytest.fail(f"test vectors missing from {path} ({where}): {', '.join(missing)}",
                    pytrace=False)
    return path


def load_vectors(name: str) -> dict[str, Any]:
    return json.loads((vectors_dir() / name).read_text(encoding="utf-8"))


#: How long a test waits for something that should happen soon.  Generous because the
#: machines that run the suite are shared and often loaded; the wait ends as soon as the
#: condition holds, so a passing test never sits out the deadline.
WAIT_TIMEOUT = 30.0


def wait_until(predicate: Callable[[], object], timeout: float = WAIT_TIMEOUT,
               interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed.

    Returns whether it held, judged once more after the deadline (so a condition that
    became true while the last sleep ran still counts).  Use it as ``assert
    wait_until(...)``: a deadline is a bound on failure, never a measurement.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


async def wait_until_async(predicate: Callable[[], object], timeout: float = WAIT_TIMEOUT,
                           interval: float = 0.02) -> bool:
    """:func:`wait_until` for a coroutine: sleeps with ``asyncio.sleep`` so the event
    loop (and the code under test on it) keeps running while the test waits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@pytest.fixture(scope="session")
def header_vectors() -> list[dict[str, Any]]:
    return load_vectors("headers.json")["headers"]
