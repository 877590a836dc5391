"""``--log-file PATH``: a rotating log of everything sgm logs, with times and levels.

The terminal keeps its own output (the stderr handler's level is not changed); the file
also gets the miner's happenings from telemetry (jobs, shares, device changes, pool
messages), so it tells the whole story of a run.  Pool passwords are masked in every line.
"""
from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sgm.telemetry import DeviceEvent, Event, JobEvent, LogEvent, ShareEvent, Subscription

__all__ = ["open_log_file", "SecretMask", "EventLog", "MAX_BYTES", "BACKUPS"]

#: size of one log file before it rotates, and how many old ones are kept (path.1 ..)
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: a password shorter than this is not masked: masking "x" would garble every line
MIN_SECRET = 3


class SecretMask(logging.Filter):
    """Replaces each secret in a record's message (and its traceback) with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET},
                              key=len, reverse=True)

    def mask(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            masked = self.mask(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.mask(record.exc_text)
        return True


def open_log_file(path: str, secrets: Iterable[str] = (), verbose: bool = False,
                  logger: logging.Logger | None = None) -> logging.Handler:
    """Attach a rotating file handler at ``path`` to ``logger`` (the root logger) at
    INFO (DEBUG when ``verbose``); OSError when the file cannot be opened."""
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise OSError(f"{target.parent}: no such directory")
    handler = logging.handlers.RotatingFileHandler(target, maxBytes=MAX_BYTES,
                                                   backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.addFilter(SecretMask(secrets))
    root = logger or logging.getLogger()
    root.addHandler(handler)
    if root.getEffectiveLevel() > handler.level:
        # the other handlers keep what they showed: each gets the level the root had
        for other in root.handlers:
            if other is not handler and other.level == logging.NOTSET:
                other.setLevel(root.getEffectiveLevel())
        root.setLevel(handler.level)
    return handler


class EventLog:
    """Writes telemetry events to one handler (the log file) as log records of
    ``sgm.events``, from a telemetry subscription's own thread."""

    def __init__(self, handler: logging.Handler) -> None:
        self.handler = handler
        self.sub: Subscription | None = None

    def attach(self, miner: Any) -> EventLog:
        self.sub = miner.subscribe(self.on_event, maxsize=10_000, gather=0.05)  # a file: no hurry
        return self

    def close(self, timeout: float = 5.0) -> None:
        if self.sub is not None:
            self.sub.close(timeout)

    def on_event(self, ev: Event) -> None:
        level, text = logging.INFO, None
        if isinstance(ev, JobEvent):
            text = f"job {ev.job_id}{' (clean)' if ev.clean else ''}"
        elif isinstance(ev, ShareEvent):
            verdict = ("found" if ev.accepted is None else "accepted" if ev.accepted
                       else f"{'stale' if ev.reason == 'stale' else 'rejected'} ({ev.reason})")
            text = (f"share {ev.device} job {ev.job_id} nonce {ev.nonce:08x} "
                    f"diff {ev.difficulty:.6g}: {verdict}")
            if ev.accepted is False and ev.reason != "stale":
                level = logging.WARNING
        elif isinstance(ev, DeviceEvent):
            text = f"device {ev.device}: {ev.what} {ev.detail}".rstrip()
            level = logging.WARNING if ev.what == "hw_error" else logging.INFO
        elif isinstance(ev, LogEvent):
            text = ev.message
            level = logging.getLevelName(ev.level) if isinstance(
                logging.getLevelName(ev.level), int) else logging.INFO
        if text is None:
            return
        record = logging.LogRecord("sgm.events", level, __file__, 0, text, None, None)
        record.created = getattr(ev, "ts", record.created)
        record.msecs = (record.created - int(record.created)) * 1000
        if level >= self.handler.level and self.handler.filter(record):
            self.handler.handle(record)
