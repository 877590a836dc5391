"""The device table: one row per mining device, keyed by its name.

Why keyed and coalesced: the snapshot arrives twice a second with every device's counters,
and the window's timer applies the latest one (so the table and the status bar always show
the same moment).  Rows are found by device name (never by a row
number a worker thread remembered), new devices are inserted (``beginInsertRows``), and a
tick's value changes go out as ONE ``dataChanged`` over the dirty rows x the live columns,
so the view repaints once and keeps its selection and scroll position (a model reset would
lose both).

The "On" column is checkable.  Ticking it records what the user wants and emits
``toggle_requested(name, enabled)``; the cell reads "pending" until a snapshot shows the
engine did it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor

log = logging.getLogger("sgm.gui.device_table")

Index = QModelIndex | QPersistentModelIndex

# column numbers: what a user checks first (on, rate, accepted, errors) comes first, so a
# narrow window scrolls away only the technical columns
COL_NAME, COL_ENABLED, COL_RATE_5S, COL_RATE_1M, COL_ACCEPTED, COL_HW, COL_KIND, COL_IMPL, \
    COL_BATCH, COL_LATENCY, COL_UTIL = range(11)
_COLUMNS = {   # column: (header, tooltip)
    COL_NAME: ("Device", "Device name as the engine knows it (sgm devices)"),
    COL_ENABLED: ("On", "Tick to mine on this device, untick to stop it; 'pending' until the "
                        "engine confirms"),
    COL_RATE_5S: ("Rate 5 s", "Hash rate now: the engine's 5-second average, 0 as soon as the "
                              "device hashes nothing"),
    COL_RATE_1M: ("Rate 1 min", "Hash rate averaged over about one minute"),
    COL_ACCEPTED: ("Accepted", "Shares this device found that the pool accepted"),
    COL_HW: ("HW errors", "Results that failed the CPU re-check (a faulty device or driver)"),
    COL_KIND: ("Kind", "CPU thread or OpenCL device"),
    COL_IMPL: ("Implementation", "Hashing kernel the device runs"),
    COL_BATCH: ("Batch", "Nonces hashed per batch of work (sized so one batch takes about "
                         "0.1 s)"),
    COL_LATENCY: ("Latency", "Time from taking a batch of work to its result (moving "
                             "average)"),
    COL_UTIL: ("Busy", "Share of time the device spent hashing over the last ~10 s"),
}
HEADERS = tuple(_COLUMNS[c][0] for c in range(len(_COLUMNS)))
TOOLTIPS = tuple(_COLUMNS[c][1] for c in range(len(_COLUMNS)))
#: Columns a snapshot can change (the dataChanged rectangle spans these): every column,
#: since a device switched off or a stopped session greys the whole row.
LIVE_FIRST, LIVE_LAST = 0, len(HEADERS) - 1
_NUMERIC = {COL_RATE_5S, COL_RATE_1M, COL_BATCH, COL_LATENCY, COL_UTIL, COL_ACCEPTED, COL_HW}
#: Figures of the device's current work: blank while it does none (switched off, or mining
#: stopped), where the last values would read as if it still worked.  Totals stay.
_WORK_FIGURES = {COL_RATE_5S, COL_RATE_1M, COL_BATCH, COL_LATENCY, COL_UTIL}
#: How the Kind column names the engine's device kinds.
KIND_NAMES = {"cpu": "CPU", "opencl": "OpenCL"}
#: Text colour of a device that does not work (switched off, or mining stopped).
IDLE_COLOUR = "#8a8a8a"


def format_rate(h: float) -> str:
    """Hashes per second with a unit a person reads at a glance."""
    for unit, scale in (("TH/s", 1e12), ("GH/s", 1e9), ("MH/s", 1e6), ("kH/s", 1e3)):
        if h >= scale:
            return f"{h / scale:.2f} {unit}"
    return f"{h:.0f} H/s"


def format_count(n: int) -> str:
    """A large count in a few characters (batch sizes reach hundreds of millions)."""
    if n >= 1_000_000_000:
        return f"{n / 1e9:.2f} G"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 10_000:
        return f"{n / 1e3:.0f} k"
    return str(n)


@dataclass
class DeviceRow:
    """What one row shows (plain values copied from a snapshot)."""

    name: str
    kind: str = ""
    impl: str = ""
    enabled: bool = True          # what the engine reports
    wanted: bool | None = None    # what the user asked for, until the engine confirms
    rate_5s: float = 0.0
    rate_1m: float = 0.0
    batch_size: int = 0
    latency_ms: float = 0.0
    utilisation: float = 0.0
    accepted: int = 0
    hw_errors: int = 0
    hashes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.wanted is not None and self.wanted != self.enabled


class DeviceTableModel(QAbstractTableModel):
    """Devices keyed by name; :meth:`update_from_summary` stores, :meth:`apply` publishes."""

    #: the user ticked / unticked a device: (name, enabled)
    toggle_requested = Signal(str, bool)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[DeviceRow] = []
        self._index: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._latest: tuple[dict[str, Any], dict[str, float]] | None = None
        #: dataChanged signals emitted by apply() (tests check coalescing)
        self.changes_emitted = 0
        self._running = True      # a mining session is on (else every row is idle)
        self._waiting = False     # ... but no pool gives work (every row is idle too)

    # ------------------------------------------------------------ Qt model API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt idiom
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return TOOLTIPS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == COL_ENABLED:
            base |= Qt.ItemFlag.ItemIsUserCheckable
        return base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row, col = self._rows[index.row()], index.column()
        idle = self.is_idle(row)
        if role == Qt.ItemDataRole.DisplayRole:
            return "" if idle and col in _WORK_FIGURES else self._display(row, col)
        if role == Qt.ItemDataRole.CheckStateRole and col == COL_ENABLED:
            on = row.wanted if row.wanted is not None else row.enabled
            return Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.TextAlignmentRole and col in _NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == COL_HW and row.hw_errors:
                return QColor("#c62828")
            if col == COL_ENABLED and row.pending:
                return QColor("#8d6e00")
            if idle:
                return QColor(IDLE_COLOUR)
        if role == Qt.ItemDataRole.ToolTipRole and idle and col in _WORK_FIGURES:
            return ("Not mining: Start all starts a session" if not self._running
                    else "Switched off: tick On to mine on this device" if not row.enabled
                    else "Waiting for a pool: no work until one answers (the header says "
                    "why)")
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_ENABLED and row.pending:
            return f"Asked to {'start' if row.wanted else 'stop'}; waiting for the engine"
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_BATCH:
            return f"{row.batch_size:,} nonces per batch"
        if role == Qt.ItemDataRole.UserRole:   # raw value, for sorting
            return self._raw(row, col)
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.column() != COL_ENABLED \
                or role != Qt.ItemDataRole.CheckStateRole:
            return False
        state = Qt.CheckState(value) if isinstance(value, int) else value
        wanted = state == Qt.CheckState.Checked
        row = self._rows[index.row()]
        row.wanted = wanted
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole,
                                             Qt.ItemDataRole.DisplayRole])
        self.toggle_requested.emit(row.name, wanted)
        return True

    # ------------------------------------------------------------ values
    def is_idle(self, row: DeviceRow) -> bool:
        """The device does no work: switched off (as the engine reports) or not mining."""
        return not self._running or self._waiting or not row.enabled

    def set_running(self, running: bool) -> None:
        """A session started or stopped: every row's figures and colour change (one
        dataChanged at the next :meth:`apply`)."""
        if running != self._running:
            self._running = running
            self._dirty.update(self.names())

    def set_waiting(self, waiting: bool) -> None:
        """The session runs but no pool is connected: the devices have no work, their rows
        are greyed and their live figures blank, as for a switched-off device."""
        if waiting != self._waiting:
            self._waiting = waiting
            self._dirty.update(self.names())

    @staticmethod
    def _display(row: DeviceRow, col: int) -> str:
        if col == COL_NAME:
            return row.name
        if col == COL_KIND:
            return KIND_NAMES.get(row.kind, row.kind)
        if col == COL_IMPL:
            return row.impl
        if col == COL_ENABLED:
            if row.pending:
                return "pending"
            return "on" if row.enabled else "off"
        if col == COL_RATE_5S:
            return format_rate(row.rate_5s)
        if col == COL_RATE_1M:
            return format_rate(row.rate_1m)
        if col == COL_BATCH:
            return format_count(row.batch_size)
        if col == COL_LATENCY:
            return f"{row.latency_ms:.1f} ms"
        if col == COL_UTIL:
            return f"{100 * row.utilisation:.0f} %"
        if col == COL_ACCEPTED:
            return f"{row.accepted:,}"
        if col == COL_HW:
            return f"{row.hw_errors:,}"
        return ""

    @staticmethod
    def _raw(row: DeviceRow, col: int) -> Any:
        return {COL_NAME: row.name, COL_KIND: row.kind, COL_IMPL: row.impl,
                COL_ENABLED: row.enabled, COL_RATE_5S: row.rate_5s, COL_RATE_1M: row.rate_1m,
                COL_BATCH: row.batch_size, COL_LATENCY: row.latency_ms,
                COL_UTIL: row.utilisation, COL_ACCEPTED: row.accepted,
                COL_HW: row.hw_errors}[col]

    # ------------------------------------------------------------ feeding (GUI thread)
    def row(self, name: str) -> DeviceRow:
        """The row of device ``name`` (KeyError if unknown)."""
        return self._rows[self._index[name]]

    def names(self) -> list[str]:
        return [r.name for r in self._rows]

    def update_from_summary(self, summary: dict[str, Any],
                            rates_now: dict[str, float] | None = None) -> None:
        """Keep the devices of a ``Miner.summary()`` for the next :meth:`apply` (the
        latest one wins, so the table and the status bar always show the same snapshot).
        ``rates_now``: each device's hashes/s over the last snapshot interval; a device
        that did no work shows 0 H/s as its 5 s rate instead of the engine's slowly
        decaying average."""
        self._latest = (summary, dict(rates_now or {}))

    def _merge(self, summary: dict[str, Any], rates_now: dict[str, float]) -> None:
        """Copy a summary into the rows: new devices inserted, changed rows marked dirty."""
        for dev in summary.get("devices", []):
            name = str(dev.get("name", ""))
            if not name:
                continue
            if name not in self._index:
                self._insert(DeviceRow(name))
            row = self._rows[self._index[name]]
            rates = dev.get("rates") or {}
            rate_5s = float(rates.get("5s", 0.0))
            if name in rates_now and rates_now[name] == 0.0:
                rate_5s = 0.0
            values = dict(kind=str(dev.get("kind", "")), impl=str(dev.get("impl", "")),
                          enabled=bool(dev.get("enabled", True)), rate_5s=rate_5s,
                          rate_1m=float(rates.get("1m", 0.0)),
                          batch_size=int(dev.get("batch_size", 0)),
                          latency_ms=float(dev.get("latency_ms", 0.0)),
                          utilisation=float(dev.get("utilisation", 0.0)),
                          accepted=int(dev.get("accepted", 0)),
                          hw_errors=int(dev.get("hw_errors", 0)),
                          hashes=int(dev.get("hashes", 0)))
            changed = False
            for key, value in values.items():
                if getattr(row, key) != value:
                    setattr(row, key, value)
                    changed = True
            if row.wanted is not None and row.wanted == row.enabled:
                row.wanted = None     # the engine confirmed what the user asked
                changed = True
            if changed:
                self._dirty.add(name)
        if "devices" in summary:   # a restart with fewer threads: its rows go
            present = {str(dev.get("name", "")) for dev in summary["devices"]}
            for name in [r.name for r in self._rows if r.name not in present]:
                self._remove(name)

    def _remove(self, name: str) -> None:
        pos = self._index[name]
        self.beginRemoveRows(QModelIndex(), pos, pos)
        del self._rows[pos]
        self._index = {r.name: i for i, r in enumerate(self._rows)}
        self._dirty.discard(name)
        self.endRemoveRows()

    def _insert(self, row: DeviceRow) -> None:
        pos = len(self._rows)
        self.beginInsertRows(QModelIndex(), pos, pos)
        self._rows.append(row)
        self._index[row.name] = pos
        self.endInsertRows()

    def apply(self) -> bool:
        """Take the latest summary and publish what changed: new rows are inserted, value
        changes go out as one dataChanged over the dirty rows x the live columns.
        True if any value changed."""
        if self._latest is not None:
            latest, self._latest = self._latest, None
            self._merge(*latest)
        if not self._dirty:
            return False
        rows = [self._index[n] for n in self._dirty if n in self._index]
        self._dirty.clear()
        if not rows:
            return False
        top, bottom = min(rows), max(rows)
        self.changes_emitted += 1
        self.dataChanged.emit(self.index(top, LIVE_FIRST), self.index(bottom, LIVE_LAST),
                              [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.CheckStateRole,
                               Qt.ItemDataRole.ForegroundRole])
        return True

    def mark_wanted(self, enabled: bool) -> None:
        """Every device was asked to go on / off (Start all, Stop all): show "pending"
        on the rows that are not there yet (one dataChanged)."""
        rows = []
        for i, row in enumerate(self._rows):
            if row.enabled != enabled:
                row.wanted = enabled
                rows.append(i)
        if rows:
            self.dataChanged.emit(self.index(min(rows), COL_ENABLED),
                                  self.index(max(rows), COL_ENABLED),
                                  [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.CheckStateRole])

    def disabled_devices(self) -> list[str]:
        """Devices switched off (or being switched off), for the settings file."""
        return [r.name for r in self._rows
                if not (r.wanted if r.wanted is not None else r.enabled)]

    def clear(self) -> None:
        """Forget every device (a new mining session may bring other ones)."""
        if not self._rows:
            return
        self.beginResetModel()
        self._rows.clear()
        self._index.clear()
        self._dirty.clear()
        self._latest = None
        self.endResetModel()
