"""``--sharelog PATH``: one CSV line per share the pool answered (or that went stale).

Columns: time (UTC, ISO 8601 with ms), device, pool (URL without credentials), job,
nonce (8 hex digits), difficulty, result (accepted / rejected / stale), reason.  The file
is appended to (a header line is written when it is new) and flushed at every line, so
another program can follow it while sgm mines.
"""
from __future__ import annotations

import csv
import datetime as dt
import threading
from pathlib import Path
from typing import Any, TextIO

from sgm.telemetry import Event, ShareEvent, Subscription

__all__ = ["ShareLog", "COLUMNS"]

COLUMNS = ("time", "device", "pool", "job", "nonce", "difficulty", "result", "reason")


class ShareLog:
    """Appends the verdicts of a Miner's shares to a CSV file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file: TextIO = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._lock = threading.Lock()
        self._miner: Any = None
        self.sub: Subscription | None = None
        self.lines = 0
        self._last_pool = ""
        if new:
            self._csv.writerow(COLUMNS)
            self._file.flush()

    def attach(self, miner: Any) -> ShareLog:
        self._miner = miner
        self.sub = miner.subscribe(self.on_event, maxsize=100_000, gather=0.05)  # a file: no hurry
        return self

    def close(self, timeout: float = 5.0) -> None:
        if self.sub is not None:
            self.sub.close(timeout)
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def _pool(self) -> str:
        from sgm.ops.cgminer_api import _no_credentials

        if self._miner is None:
            return ""
        for row in self._miner.pool_status():
            if row["active"]:
                self._last_pool = _no_credentials(str(row["url"]))
                return self._last_pool
        solo = self._miner.config.solo
        if solo is not None:
            return _no_credentials(solo.endpoint())
        # a share gone stale as the session ended: the pool it was found for
        return self._last_pool

    def on_event(self, ev: Event) -> None:
        if not isinstance(ev, ShareEvent) or ev.accepted is None:
            return
        result = "accepted" if ev.accepted else "stale" if ev.reason == "stale" else "rejected"
        when = dt.datetime.fromtimestamp(ev.ts, dt.UTC).isoformat(timespec="milliseconds")
        row = (when, ev.device, self._pool(), ev.job_id, f"{ev.nonce:08x}",
               f"{ev.difficulty:.6g}", result, "" if ev.accepted else (ev.reason or ""))
        with self._lock:
            if self._file.closed:
                return
            self._csv.writerow(row)
            self._file.flush()
            self.lines += 1
