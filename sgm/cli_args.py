"""Argument types and the usage error shared by the command-line modules (sgm.cli for the
subcommands, sgm.miner_cli for mining).  Imports nothing from either, so neither imports
the other to get them."""
from __future__ import annotations

import argparse
from collections.abc import Callable

from sgm._native import NONCE_SPACE


class UsageError(Exception):
    """Bad command-line input: reported on stderr with exit status 2."""


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def int_in(lo: int, hi: int | None, what: str) -> Callable[[str], int]:
    """argparse type: an integer (decimal or 0x...) in lo..hi (hi None: no upper bound)."""
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


positive_int = int_in(1, None, "a positive integer")
u32 = int_in(0, 0xFFFFFFFF, "in 0 .. 4294967295")
nonce_count = int_in(0, NONCE_SPACE, "in 0 .. 4294967296")


def pool_flags(urls: list[str], users: list[str],
               passwords: list[str]) -> list[tuple[str, str, str]]:
    """(url, user, password) per -o, in order: the i-th -u/-p belong to the i-th -o, a
    missing one repeats the last given (user "" and password "x" when none is).  Raises
    UsageError for more -u/-p than -o, or -u/-p without any -o."""
    if not urls:
        if users or passwords:
            raise UsageError("-u/-p given without -o: name the pool URL with -o")
        return []
    if len(users) > len(urls) or len(passwords) > len(urls):
        raise UsageError("more -u/-p than -o: give one -u and -p per pool URL")
    return [(url,
             users[i] if i < len(users) else (users[-1] if users else ""),
             passwords[i] if i < len(passwords) else (passwords[-1] if passwords else "x"))
            for i, url in enumerate(urls)]
