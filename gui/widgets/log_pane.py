"""The engine's log lines in the window: a logging handler feeding a bounded, filterable pane.

Why a signal and not a widget call in the handler: ``logging`` calls ``emit()`` on whichever
thread logged (device threads, the network thread).  Widgets may only be touched on the GUI
thread, so :class:`QtLogHandler` only formats the record and emits a Qt signal; the signal is
queued to the pane on the GUI thread.  The pane batches lines (one document edit per ~100 ms)
so a burst of records costs one layout pass, and keeps at most ``max_lines`` lines both in
its store and in the document.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from PySide6 import QtCore, QtGui, QtWidgets

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LEVEL_COLOURS = {"DEBUG": "#6B6B6B", "WARNING": "#9A6700", "ERROR": "#B3261E",
                 "CRITICAL": "#B3261E"}
#: How long lines wait to be drawn together (ms).
FLUSH_INTERVAL_MS = 100
#: Lines reach the pane by two paths (logging records at once, the engine's telemetry log
#: events through the bridge's 0.1 s batches), so a line can arrive after a later one: a
#: line is drawn once it is this old, in time order with the others that came meanwhile.
SETTLE_S = 0.3


def level_number(level: str) -> int:
    """logging's number for a level name; unknown names count as INFO."""
    value = logging.getLevelName(str(level).upper())
    return value if isinstance(value, int) else logging.INFO


class _LogEmitter(QtCore.QObject):
    """Lives on the GUI thread; its signal may be emitted from any thread."""

    record = QtCore.Signal(str, str, float)     # level name, formatted message, epoch seconds


class QtLogHandler(logging.Handler):
    """A logging handler whose ``emit`` only emits ``signal`` (safe on any thread).

    Create it on the GUI thread (its emitter QObject lives where it is created) and connect
    ``signal`` with a queued connection.
    """

    def __init__(self, level: int = logging.NOTSET,
                 fmt: str = "%(message)s",   # a logger's name means nothing to a user
                 sink: Callable[[str, str, float], None] | None = None) -> None:
        super().__init__(level)
        self.emitter = _LogEmitter()
        self.signal = self.emitter.record
        #: called instead of emitting ``signal`` when given: a thread-safe, coalescing
        #: receiver (LogPane.append), so a burst of records is not a burst of queued calls
        self.sink = sink
        self.setFormatter(logging.Formatter(fmt))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)
            return
        if self.sink is not None:
            try:
                self.sink(record.levelname, message, record.created)
            except RuntimeError:
                # the pane's C++ object is gone (a window deleted without closing): a
                # logging call on an engine thread must not fail because of it
                pass
            return
        try:
            self.emitter.record.emit(record.levelname, message, record.created)
        except RuntimeError:
            pass    # the emitter's C++ object is gone (the app is shutting down)


class LogLine(NamedTuple):
    levelno: int
    level: str
    message: str
    ts: float


class LogPane(QtWidgets.QWidget):
    """Read-only log view with a level filter; ``append`` may be called from any thread."""

    _wake = QtCore.Signal()

    def __init__(self, max_lines: int = 5000, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        if not isinstance(max_lines, int) or max_lines < 1:
            raise ValueError(f"max_lines must be a positive int, got {max_lines!r}")
        self.max_lines = max_lines
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=max_lines)
        self._pending: collections.deque[LogLine] = collections.deque(maxlen=max_lines)
        self._lock = threading.Lock()          # _lines and _pending: append may be off-thread
        self._woken = False   # a flush is due: later appends need no wake-up of their own
        self._min_level = logging.INFO
        self.handler: QtLogHandler | None = None
        self._loggers: list[logging.Logger] = []

        self.view = QtWidgets.QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setMaximumBlockCount(max_lines)
        self.view.setUndoRedoEnabled(False)
        self.view.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.FixedFont))
        self.view.setLineWrapMode(QtWidgets.QPlainTextEdit.WidgetWidth)
        self.level_combo = QtWidgets.QComboBox()
        self.level_combo.addItems(LEVELS)
        self.level_combo.setCurrentText("INFO")
        self.level_combo.setToolTip("Show lines of this level and above")
        self.level_combo.currentTextChanged.connect(self.set_level)
        clear = QtWidgets.QPushButton("Clear")
        clear.clicked.connect(self.clear)
        bar = QtWidgets.QHBoxLayout()
        caption = QtWidgets.QLabel("&Level")
        caption.setBuddy(self.level_combo)
        bar.addWidget(caption)
        bar.addWidget(self.level_combo)
        bar.addStretch(1)
        bar.addWidget(clear)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(FLUSH_INTERVAL_MS)
        self._timer.timeout.connect(lambda: self.flush(SETTLE_S))
        self._wake.connect(self._schedule, QtCore.Qt.QueuedConnection)
        self._formats = {name: self._format_for(name) for name in (*LEVELS, "CRITICAL")}

    # ------------------------------------------------------------------ data in
    def append(self, level: str, message: str, ts: float) -> None:
        """Add one line; drawn within about FLUSH_INTERVAL_MS (any thread may call)."""
        line = LogLine(level_number(level), str(level).upper(), str(message), float(ts))
        with self._lock:
            self._lines.append(line)
            self._pending.append(line)
            wake, self._woken = not self._woken, True
        if not wake:               # one wake-up per flush, however many lines come
            return
        if QtCore.QThread.currentThread() is self.thread():
            self._schedule()
        else:
            self._wake.emit()      # queued: the timer starts on the GUI thread

    def attach(self, logger: logging.Logger) -> QtLogHandler:
        """Show ``logger``'s records (its own level still decides what is logged)."""
        if self.handler is None:
            self.handler = QtLogHandler(sink=self.append)
        if logger not in self._loggers:
            logger.addHandler(self.handler)
            self._loggers.append(logger)
        return self.handler

    def detach(self) -> None:
        """Remove the handler from every logger attach() gave it to."""
        for logger in self._loggers:
            if self.handler is not None:
                logger.removeHandler(self.handler)
        self._loggers.clear()

    # ------------------------------------------------------------------ view
    def set_level(self, level: str) -> None:
        """Show only lines at ``level`` or above (redraws the kept lines)."""
        self._min_level = level_number(level)
        # a lower level than the loggers log at would show nothing more: they log it now
        for logger in self._loggers:
            if logger.getEffectiveLevel() > self._min_level:
                logger.setLevel(self._min_level)
        if self.level_combo.currentText() != str(level).upper() and str(level).upper() in LEVELS:
            self.level_combo.setCurrentText(str(level).upper())
        with self._lock:
            self._pending.clear()
            self._woken = False
            lines = sorted(self._lines, key=lambda ln: ln.ts)
        self.view.clear()
        self._draw(lines)

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
            self._pending.clear()
        self.view.clear()

    def flush(self, settle_s: float = 0.0) -> None:
        """Draw, in time order, the waiting lines older than ``settle_s`` (the timer passes
        SETTLE_S: younger ones wait for the next flush, so a line that arrives late by the
        other path still lands in its place; 0 draws everything now)."""
        cutoff = time.time() - settle_s
        with self._lock:
            ready = sorted((ln for ln in self._pending if ln.ts <= cutoff), key=lambda ln: ln.ts)
            waiting = [ln for ln in self._pending if ln.ts > cutoff]
            self._pending.clear()
            self._pending.extend(waiting)
            self._woken = bool(waiting)
        self._draw(ready)
        if waiting:
            self._schedule()

    def lines(self) -> list[LogLine]:
        """Every kept line (filtered out or not), oldest first."""
        with self._lock:
            return list(self._lines)

    def text(self) -> str:
        """What the pane shows (tests, copy)."""
        return self.view.toPlainText()

    # ------------------------------------------------------------------ internals
    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _format_for(self, level: str) -> QtGui.QTextCharFormat:
        fmt = QtGui.QTextCharFormat()
        colour = LEVEL_COLOURS.get(level)
        if colour:
            fmt.setForeground(QtGui.QColor(colour))
        if level in ("ERROR", "CRITICAL"):
            fmt.setFontWeight(QtGui.QFont.Bold)
        return fmt

    def _draw(self, lines: list[LogLine]) -> None:
        shown = [ln for ln in lines if ln.levelno >= self._min_level][-self.max_lines:]
        if not shown:
            return
        bar = self.view.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 2     # keep following unless scrolled up
        doc = self.view.document()
        cursor = QtGui.QTextCursor(doc)
        cursor.beginEditBlock()
        cursor.movePosition(QtGui.QTextCursor.End)
        empty = doc.isEmpty()
        default = QtGui.QTextCharFormat()
        for i, ln in enumerate(shown):
            if i or not empty:
                cursor.insertBlock()
            stamp = time.strftime("%H:%M:%S", time.localtime(ln.ts)) + f".{int(ln.ts * 1000) % 1000:03d}"
            cursor.insertText(f"{stamp} {ln.level:<8s} ", default)
            cursor.insertText(ln.message, self._formats.get(ln.level, default))
        cursor.endEditBlock()
        if follow:
            bar.setValue(bar.maximum())
