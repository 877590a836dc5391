"""The Rigs tab: several miners watched through their cgminer APIs (the desktop half of
``sgm farm``).

A rig is any miner that speaks cgminer's API: sgm with ``--api-listen``, cgminer, bfgminer,
most ASIC firmwares.  Every :data:`POLL_MS` the tab asks each rig for ``summary``, ``pools``
and ``version`` with the engine's own poller (``sgm.api.poll_rig``, what ``sgm farm``
runs) and shows per rig its version, hash rate (5 s and average), accepted / rejected /
stale shares, hardware errors, pools and when it last answered; a total row; and the
farm's total hash rate over time.

Why it is built this way:

* the polls run on one asyncio loop on a plain thread (:class:`RigPoller`), never on the
  GUI thread, and each rig is polled on its own: a rig that hangs (accepts and never
  answers) or is unreachable delays nobody, neither the window nor the other rigs.  A rig
  whose poll is still out is not asked again until it ends, and every poll has a hard
  deadline, so a rig that drips bytes forever cannot pile up requests;
* results come back one :class:`RigStatus` at a time through a queued Qt signal; the slot
  only stores it and redraws that row;
* a rig that cannot be read keeps its last good figures, greyed, beside the reason
  ("Unreachable — Connection refused", "Malformed — summary: the reply is not JSON"),
  and the total counts only the rigs that answered their last poll (as ``sgm farm``);
* the farm's hash rate lives in a :class:`RingBuffer` of fixed size (the charts' own), one
  sample per poll period, so a week of watching holds no more than the window.

The list of rigs is the config file's ``"rigs"`` (the one ``sgm farm -c`` reads); the tab
emits :attr:`RigsTab.rigs_changed` and the window saves it through ``settings.py``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import math
import threading
import time
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets  # before pyqtgraph binds (see charts.py)

from sgm.api import Rig, RigStatus, farm_total, parse_rig, poll_rig

from ..models.device_table import format_rate
from .charts import BACKGROUND, FOREGROUND, TOTAL_COLOUR, RingBuffer

log = logging.getLogger("sgm.gui.rigs")

#: How often every rig is asked (the issue: about every 2 s).
POLL_MS = 2000
#: Seconds one step of a poll (connect, one reply) may take before the rig is "unreachable".
TIMEOUT_S = 3.0
#: Seconds of farm hash rate the plot shows.
PLOT_WINDOW_S = 600.0

#: Pools last: the widest text, it takes the room left (elided; the tooltip lists them all).
COLUMNS = ("Rig", "State", "Version", "5 s", "Average", "Accepted", "Rejected", "Stale",
           "HW errors", "Last seen", "Pools")
(COL_RIG, COL_STATE, COL_VERSION, COL_5S, COL_AV, COL_ACC, COL_REJ, COL_STALE, COL_HW,
 COL_SEEN, COL_POOLS) = range(len(COLUMNS))
#: Texts the columns are sized for (the largest they plausibly show).
_WIDTH_SAMPLES = ("192.168.100.20:4028", "Unreachable — Connection refused", "sgm 0.0.0.dev0",
                  "999.99 GH/s", "999.99 GH/s", "9,999,999", "99,999", "99,999", "99,999",
                  "59 min ago", "pool.example.com:3333")

#: What a row's State says, by RigStatus.state.
STATE_WORDS = {"ok": "OK", "unreachable": "Unreachable", "malformed": "Malformed",
               "pending": "Asking…"}
STATE_COLOURS = {"ok": "#1B7F3B", "unreachable": "#B3261E", "malformed": "#A15C00",
                 "pending": "#5F6368"}
STALE_FIGURES = "#8A8A8A"     # a rig's last good figures while it does not answer


def format_seen(last_seen: float | None, now: float) -> str:
    """How long ago a rig last answered: "now", "12 s ago", "3 min ago", "never"."""
    if last_seen is None:
        return "never"
    ago = max(0.0, now - last_seen)
    if ago < 1.0:
        return "now"
    if ago < 120:
        return f"{ago:.0f} s ago"
    if ago < 7200:
        return f"{ago / 60:.0f} min ago"
    return f"{ago / 3600:.0f} h ago"


def pools_text(pools: list[dict[str, Any]]) -> str:
    """The pool a rig mines (its active one, else its first) and how many more it has."""
    if not pools:
        return "—"
    active = next((p for p in pools if p.get("active")), pools[0])
    more = len(pools) - 1
    url = str(active.get("url") or "?")
    # plain Stratum is the usual case: its scheme is left out for room (the tooltip has it);
    # any other scheme (stratum+ssl://, http:// for solo) is shown
    url = url.removeprefix("stratum+tcp://")
    return url + (f" (+{more})" if more else "")


def pools_tooltip(pools: list[dict[str, Any]]) -> str:
    if not pools:
        return "The rig reported no pools"
    lines = []
    for i, p in enumerate(pools):
        mark = " — mining" if p.get("active") else ""
        lines.append(f"{i}: {p.get('url') or '?'} as {p.get('user') or '-'} "
                     f"({p.get('status') or '?'}){mark}")
    return "\n".join(lines)


def state_text(status: RigStatus) -> str:
    """"OK", or the trouble and its reason: "Unreachable — Connection refused"."""
    words = STATE_WORDS.get(status.state, status.state.capitalize())
    return f"{words} — {status.error}" if status.error else words


async def poll_with_deadline(rig: Rig, timeout: float, previous: RigStatus | None) -> RigStatus:
    """``poll_rig`` with a hard deadline on the whole poll: its own timeout bounds each
    step, but a rig that answers a byte at a time could stretch a poll without end."""
    deadline = 2 * timeout + 1.0
    try:
        return await asyncio.wait_for(poll_rig(rig, timeout, previous), deadline)
    except TimeoutError:
        base = previous if previous is not None else RigStatus(str(rig))
        return dataclasses.replace(base, rig=str(rig), state="unreachable",
                                   error=f"no complete answer within {deadline:g} s")


async def _cancel_all() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class RigPoller(QtCore.QObject):
    """Polls rigs on its own thread's asyncio loop; each finished poll is one
    :attr:`polled` signal (queued to the GUI thread, where this object lives)."""

    polled = QtCore.Signal(object)       # a RigStatus

    def __init__(self, timeout_s: float = TIMEOUT_S,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.timeout_s = float(timeout_s)
        self._loop = asyncio.new_event_loop()
        # not "sgm-…": the engine's threads are named so, and tests count those
        self._thread = threading.Thread(target=self._run, name="gui-rigs-poller", daemon=True)
        self._futures: set[concurrent.futures.Future[RigStatus]] = set()
        self._closed = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def submit(self, rig: Rig, previous: RigStatus | None) -> None:
        """Poll ``rig`` now (the caller makes sure one poll per rig is out at a time)."""
        if self._closed:
            return
        if not self._thread.is_alive():
            self._thread.start()      # at the first rig: no thread for a user without rigs
        fut = asyncio.run_coroutine_threadsafe(
            poll_with_deadline(rig, self.timeout_s, previous), self._loop)
        self._futures.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: concurrent.futures.Future[RigStatus]) -> None:
        # runs on the loop's thread: emitting from here queues the slot onto the GUI thread
        self._futures.discard(fut)
        if fut.cancelled() or self._closed:
            return
        exc = fut.exception()
        if exc is not None:          # poll_rig never raises; this is a bug, not a rig
            log.error("rig poll failed: %r", exc)
            return
        self.polled.emit(fut.result())

    def close(self, timeout: float = 2.0) -> None:
        """Cancel the polls that are out and end the thread."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            self._loop.close()
            return
        if not self._loop.is_closed():
            # (thread-safe calls work on a loop that has not begun running yet)
            # cancel on the loop itself and wait for the polls to unwind (their sockets
            # close), so no task is left pending when the loop closes
            done = asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop)
            with contextlib.suppress(Exception):
                done.result(timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


class RigsTab(QtWidgets.QWidget):
    """The Rigs tab (see the module docstring).  ``interval_ms`` and ``timeout_s`` are the
    poll period and the per-step timeout; ``window_s`` the plot's time span."""

    #: the user added or removed a rig: the new list of "HOST:PORT" (the window saves it)
    rigs_changed = QtCore.Signal(list)
    #: one rig's new status was shown (for tests and the status bar)
    rig_updated = QtCore.Signal(object)

    def __init__(self, rigs: list[str] | None = None, interval_ms: int = POLL_MS,
                 timeout_s: float = TIMEOUT_S, window_s: float = PLOT_WINDOW_S,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        if not interval_ms > 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self.interval_ms = int(interval_ms)
        self._rigs: list[Rig] = []
        self._status: dict[str, RigStatus] = {}
        self._in_flight: set[str] = set()
        #: polls answered since the tab started (any state), for tests and diagnostics
        self.polls_done = 0
        #: timer ticks so far: the GUI thread's pulse, whatever a rig does
        self.ticks = 0
        self._poller = RigPoller(timeout_s, self)
        self._poller.polled.connect(self._on_polled, QtCore.Qt.ConnectionType.QueuedConnection)
        self.window_s = float(window_s)
        capacity = max(16, int(self.window_s * 1000 / self.interval_ms) + 2)
        self.history = RingBuffer(capacity)
        self._build()
        for text in rigs or []:
            try:
                rig = parse_rig(text)
            except ValueError as exc:     # settings.py checked them; say it rather than crash
                log.warning("rig %r skipped: %s", text, exc)
                continue
            if rig not in self._rigs:
                self._rigs.append(rig)
        self._rebuild_rows()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(self.interval_ms)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self._tick()               # the first answers come now, not one period later

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        # one line (a wrapped label asks for the height of its narrowest layout and leaves a
        # gap); what does not fit is in the tooltip
        intro = QtWidgets.QLabel(
            "Miners with a cgminer API: sgm --api-listen, cgminer, bfgminer, ASIC firmwares. "
            "Saved as \"rigs\" in the settings file, the list 'sgm farm -c' reads.")
        intro.setToolTip(intro.text())
        intro.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                            QtWidgets.QSizePolicy.Policy.Fixed)
        layout.addWidget(intro)

        form = QtWidgets.QHBoxLayout()
        label = QtWidgets.QLabel("&New rig:")
        self.address = QtWidgets.QLineEdit()
        self.address.setPlaceholderText("HOST:PORT  (port 4028 when left out)")
        self.address.setClearButtonEnabled(True)
        self.address.returnPressed.connect(self.add_from_form)
        self.address.textEdited.connect(lambda _t: self._show_error(""))
        label.setBuddy(self.address)
        self.add_button = QtWidgets.QPushButton("Add rig")
        self.add_button.setToolTip("Watch the miner whose cgminer API listens at this address "
                                   "(Enter in the field)")
        self.add_button.clicked.connect(self.add_from_form)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.setToolTip("Stop watching the selected rigs (Delete)")
        self.remove_button.setEnabled(False)
        self.remove_button.clicked.connect(self.remove_selected)
        form.addWidget(label)
        form.addWidget(self.address, 1)
        form.addWidget(self.add_button)
        form.addWidget(self.remove_button)
        layout.addLayout(form)
        self.error_label = QtWidgets.QLabel()
        self.error_label.setStyleSheet("color: #B3261E;")
        self.error_label.setWordWrap(True)
        self.error_label.setVisible(False)
        layout.addWidget(self.error_label)

        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTabKeyNavigation(False)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        self.table.itemSelectionChanged.connect(self._on_selection)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        fm, hfm = self.table.fontMetrics(), header.fontMetrics()
        for col, (title, sample) in enumerate(zip(COLUMNS, _WIDTH_SAMPLES, strict=True)):
            width = max(fm.horizontalAdvance(sample), hfm.horizontalAdvance(title)) + 16
            if col == COL_STATE:
                width = min(width, 240)     # a long reason is elided; the tooltip has it all
            elif COL_5S <= col <= COL_SEEN:
                width = max(fm.horizontalAdvance(sample), hfm.horizontalAdvance(title)) + 10
            self.table.setColumnWidth(col, width)
        delete = QtGui.QShortcut(QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Delete),
                                 self.table)
        delete.setContext(QtCore.Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self.remove_selected)
        split.addWidget(self.table)

        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setBackground(BACKGROUND)
        item = self.plot.getPlotItem()
        item.setTitle("Farm hash rate (the rigs that answered, 5 s average)", color=FOREGROUND,
                      size="9pt")
        item.setLabel("left", "rate", units="H/s")
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(FOREGROUND))
            axis.setTextPen(pg.mkPen(FOREGROUND))
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.getViewBox().disableAutoRange()    # set by _redraw_plot: the window, Y from 0
        self.curve = item.plot(pen=pg.mkPen(TOTAL_COLOUR, width=2))
        self.placeholder = pg.TextItem("no rig has answered yet", color="#8A8A8A",
                                       anchor=(0.5, 0.5))
        item.addItem(self.placeholder, ignoreBounds=True)
        self.plot.setMinimumHeight(120)
        split.addWidget(self.plot)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout.addWidget(split, 1)
        self.summary_label = QtWidgets.QLabel()
        layout.addWidget(self.summary_label)
        self._redraw_plot()

    # ------------------------------------------------------------------ the list of rigs
    def rigs(self) -> list[str]:
        """The rigs watched, as the config file keeps them ("HOST:PORT")."""
        return [str(r) for r in self._rigs]

    def add_rig(self, text: str) -> str | None:
        """Watch the rig at ``text``; returns why not (bad address, already there) or None.
        It is asked at once; :attr:`rigs_changed` tells the window to save."""
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            return "A rig address must not contain control characters"
        try:
            rig = parse_rig(text)
        except ValueError as exc:
            message = str(exc)
            return message[:1].upper() + message[1:]
        if rig in self._rigs:
            return f"{rig} is already in the list"
        self._rigs.append(rig)
        self._rebuild_rows()
        self._poll(rig)
        self.rigs_changed.emit(self.rigs())
        return None

    def add_from_form(self) -> bool:
        error = self.add_rig(self.address.text())
        self._show_error(error or "")
        if error is None:
            self.address.clear()
        return error is None

    def remove_rigs(self, names: list[str]) -> None:
        """Stop watching these rigs ("HOST:PORT"); a poll still out for one is ignored."""
        gone = set(names)
        kept = [r for r in self._rigs if str(r) not in gone]
        if len(kept) == len(self._rigs):
            return
        self._rigs = kept
        for name in gone:
            self._status.pop(name, None)
        self._rebuild_rows()
        self.rigs_changed.emit(self.rigs())

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        self.remove_rigs([str(self._rigs[r]) for r in rows if r < len(self._rigs)])

    def _on_selection(self) -> None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        self.remove_button.setEnabled(any(r < len(self._rigs) for r in rows))

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    # ------------------------------------------------------------------ polling
    def _tick(self) -> None:
        """Every period: ask each rig whose previous poll is over, refresh "last seen",
        and add the farm's rate to the plot."""
        self.ticks += 1
        for rig in self._rigs:
            self._poll(rig)
        now = time.time()
        for row, rig in enumerate(self._rigs):
            status = self._status.get(str(rig))
            if status is not None:
                self._item(row, COL_SEEN).setText(format_seen(status.last_seen, now))
        self.record_total(now)

    def record_total(self, now: float | None = None) -> None:
        """One sample of the farm's hash rate (H/s, the total row's 5 s figure) for the
        plot; nothing until some rig has answered, so an empty farm draws no false zero."""
        if not any(s.last_seen is not None for s in self._status.values()):
            return
        self.history.append(time.time() if now is None else now, self.total()["mhs_5s"] * 1e6)
        self._redraw_plot()

    def _poll(self, rig: Rig) -> None:
        name = str(rig)
        if name in self._in_flight:
            return                # still out (a slow or hanging rig): never two at once
        self._in_flight.add(name)
        self._poller.submit(rig, self._status.get(name))

    def _on_polled(self, status: RigStatus) -> None:
        self._in_flight.discard(status.rig)
        self.polls_done += 1
        names = self.rigs()
        if status.rig not in names:
            return                # removed while its poll was out
        self._status[status.rig] = status
        self._show_row(names.index(status.rig), status)
        self._show_total()
        self.rig_updated.emit(status)

    def status(self, name: str) -> RigStatus | None:
        """The last poll of rig ``name`` ("HOST:PORT"), None before its first answer."""
        return self._status.get(name)

    def in_flight(self) -> set[str]:
        return set(self._in_flight)

    def total(self) -> dict[str, Any]:
        """The total row's figures: ``sgm farm``'s own sums (rigs that answered)."""
        return farm_total([self._status.get(str(r), RigStatus(str(r))) for r in self._rigs])

    def shutdown(self) -> None:
        """Stop polling and end the poller's thread (the window calls this on close)."""
        self.timer.stop()
        self._poller.close()

    # ------------------------------------------------------------------ the table
    def _item(self, row: int, col: int) -> QtWidgets.QTableWidgetItem:
        item = self.table.item(row, col)
        if item is None:
            item = QtWidgets.QTableWidgetItem()
            if col >= COL_5S and col <= COL_HW:
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight
                                      | QtCore.Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, col, item)
        return item

    def cell(self, row: int, col: int) -> str:
        """The text shown at (row, col); the total is the row after the last rig."""
        item = self.table.item(row, col)
        return item.text() if item is not None else ""

    def _rebuild_rows(self) -> None:
        self.table.clearContents()     # the total row moves: no bold rig rows left behind
        self.table.setRowCount(len(self._rigs) + 1)
        for row, rig in enumerate(self._rigs):
            status = self._status.get(str(rig))
            self._show_row(row, status if status is not None
                           else RigStatus(str(rig), state="pending"))
        self._show_total()
        self._on_selection()

    def _show_row(self, row: int, s: RigStatus) -> None:
        seen_ever = s.last_seen is not None
        figures = [s.version or "—", format_rate(s.mhs_5s * 1e6), format_rate(s.mhs_av * 1e6),
                   f"{s.accepted:,}", f"{s.rejected:,}", f"{s.stale:,}", f"{s.hw_errors:,}"]
        pools = pools_text(s.pools)
        if not seen_ever:
            figures, pools = ["—"] * len(figures), "—"
        texts = [s.rig, state_text(s), *figures, format_seen(s.last_seen, time.time()), pools]
        grey = QtGui.QBrush(QtGui.QColor(STALE_FIGURES))
        for col, text in enumerate(texts):
            item = self._item(row, col)
            item.setText(text)
            if col == COL_STATE:
                item.setForeground(QtGui.QBrush(QtGui.QColor(
                    STATE_COLOURS.get(s.state, STALE_FIGURES))))
                item.setToolTip(state_text(s) + (
                    "\nThe figures are those of its last answer" if s.state != "ok"
                    and seen_ever else ""))
            elif COL_VERSION <= col <= COL_HW or col == COL_POOLS:
                # the last good figures stay readable, greyed, while the rig does not answer
                item.setData(QtCore.Qt.ItemDataRole.ForegroundRole,
                             None if s.state == "ok" else grey)
        self._item(row, COL_POOLS).setToolTip(pools_tooltip(s.pools) if seen_ever else "")
        self._item(row, COL_SEEN).setToolTip(
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.last_seen)) if seen_ever
            else "It has not answered since the tab started")

    def _show_total(self) -> None:
        row = len(self._rigs)
        t = self.total()
        texts = ["Total", f"{t['rigs_ok']} of {t['rigs']} answering", "",
                 format_rate(t["mhs_5s"] * 1e6), format_rate(t["mhs_av"] * 1e6),
                 f"{t['accepted']:,}", f"{t['rejected']:,}", f"{t['stale']:,}",
                 f"{t['hw_errors']:,}", "", ""]
        bold = self.table.font()
        bold.setBold(True)
        for col, text in enumerate(texts):
            item = self._item(row, col)
            item.setText(text)
            item.setFont(bold)
            item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)   # not selectable: not a rig
        self._item(row, COL_STATE).setToolTip(
            "The sums count the rigs that answered their last poll")
        self.summary_label.setText(
            f"{len(self._rigs)} rig(s); {t['rigs_ok']} answering; farm "
            f"{format_rate(t['mhs_5s'] * 1e6)}" if self._rigs else
            "No rig yet: add one above (for sgm: sgm --api-listen on that machine)")

    # ------------------------------------------------------------------ the plot
    def _redraw_plot(self) -> None:
        t, y = self.history.view()
        now = time.time()
        item = self.plot.getPlotItem()
        start = now - self.window_s
        top = 0.0
        if len(t):
            start = max(start, min(float(t[0]), now - 60.0))
            keep = t >= start
            shown = y[keep]
            self.curve.setData(t[keep].copy(), shown.copy())
            top = float(shown.max()) if len(shown) else 0.0
        top = top * 1.15 if top > 0 and math.isfinite(top) else 1.0
        item.setXRange(start, now, padding=0)
        item.setYRange(0, top, padding=0)
        self.placeholder.setVisible(not len(t))
        self.placeholder.setPos((start + now) / 2, top / 2)
