"""Shared test fixtures: the read-only real-world vectors in ../shared/vectors."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest


def vectors_dir() -> Path:
    env = os.environ.get("SGM_VECTORS")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "vectors"
    if not (path / "headers.json").is_file():
        pytest.fail(
            f"test vectors not found at {path}: the checkout needs ../shared/vectors beside it "
            "(or set SGM_VECTORS to that folder)",
            pytrace=False,
        )
    return path


def load_vectors(name: str) -> dict:
    return json.loads((vectors_dir() / name).read_text())


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@pytest.fixture(scope="session")
def header_vectors() -> list[dict]:
    return load_vectors("headers.json")["headers"]
