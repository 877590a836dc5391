"""The main window: devices, charts, pools, log, benchmark and rigs tabs over one EngineBridge.

Data flow (why it stays responsive under any share rate): the bridge's signals arrive on
the GUI thread (queued) and the slots here only store plain data and set dirty flags; one
QTimer at :data:`TICK_MS` applies them -- the device table's single ``dataChanged``, the
charts' redraw, the status-bar counters, the pool table and the tray tooltip.  User actions
go to the bridge, which runs them on its worker thread.  Closing stops mining in the
background and closes for real once the bridge says ``stopped``.
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QObject, QRect, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSystemTrayIcon,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from sgm.api import LICENSE, DeviceEvent, LogEvent, MinerConfig, PoolConfig, ShareEvent, __version__

from .bridge import EngineBridge, pools_config
from .icon import make_icon
from .models.device_table import (
    COL_ACCEPTED,
    COL_BATCH,
    COL_ENABLED,
    COL_HW,
    COL_IMPL,
    COL_KIND,
    COL_LATENCY,
    COL_NAME,
    COL_RATE_1M,
    COL_RATE_5S,
    COL_UTIL,
    DeviceTableModel,
    format_rate,
)
from .settings import GuiSettings, UnreadableSettingsFile, save_settings
from .widgets.bench_tab import BenchTab
from .widgets.charts import ChartsPanel
from .widgets.log_pane import LogPane
from .widgets.pool_panel import PoolPanel
from .widgets.rigs_tab import RigsTab

log = logging.getLogger("sgm.gui")

#: The coalescing timer's period (4 Hz: at least once a second for the charts, cheap).
TICK_MS = 250
#: Seconds a close waits for mining to stop before closing anyway (threads are daemons).
CLOSE_GRACE_S = 20.0
#: Chart time window (the issue asks for the last 10 minutes).
CHART_WINDOW_S = 600.0
#: How the banner line of a failed start begins (removed once a start works).
START_FAILED = "Mining could not start:"
#: The first window's size where the screen has room (else it is fitted to the screen).
DEFAULT_SIZE = QSize(1200, 760)
#: Room kept for the window manager's frame (title bar, borders) when fitting the first
#: window to the screen's available area: the frame is not known before the window shows.
FRAME_ALLOWANCE = QSize(16, 40)
#: Keys of Start all / Stop all (a debugger's run and stop).
START_KEY, STOP_KEY = "F5", "Shift+F5"
#: The README's sections a user looks for (Help > README names them).
README_SECTIONS = ("Mining", "Desktop app", "Solo mining", "Commands", "Benchmarks")


MINIMUM_SIZE = QSize(720, 480)


def fit_size(available: QRect, wanted: QSize = DEFAULT_SIZE,
             minimum: QSize = MINIMUM_SIZE) -> QSize:
    """The client size of a first window on a screen whose free area (without panels) is
    ``available``: ``wanted`` where it fits with its frame, else as much as fits, never
    below ``minimum``."""
    width = min(wanted.width(), available.width() - FRAME_ALLOWANCE.width())
    height = min(wanted.height(), available.height() - FRAME_ALLOWANCE.height())
    return QSize(max(minimum.width(), width), max(minimum.height(), height))


def readme_path() -> Path | None:
    """The README shipped beside the app (the bundle's copy, or the source tree's)."""
    import sys

    here = Path(__file__).resolve().parent
    for folder in (Path(getattr(sys, "_MEIPASS", here)), here.parent):
        candidate = folder / "README.md"
        if candidate.is_file():
            return candidate
    return None


def connection_problem(pools: list[dict[str, Any]]) -> str:
    """Why no pool is mined, in words, with the retry countdown: "Cannot connect to
    127.0.0.1:1: connection refused — retrying in 8 s"."""
    waiting = next((r for r in pools if r.get("retry_in_s") is not None), None)
    connecting = next((r for r in pools if r.get("state") == "connecting"), None)
    failed = waiting if waiting is not None and waiting.get("error") else next(
        (r for r in pools if r.get("error")), None)
    reason = str(failed["error"]) if failed is not None else ""
    reason = reason[:1].upper() + reason[1:]
    if waiting is not None:
        wait = f"retrying in {math.ceil(float(waiting['retry_in_s']))} s"
        return f"{reason} — {wait}" if reason else f"Not connected — {wait}"
    if connecting is not None:
        return (f"{reason} — connecting again…" if reason
                else f"Connecting to {connecting['url']}…")
    return reason or "Not connected to any pool"


#: Loggers whose INFO records come once per share (the embedded pool's own bookkeeping):
#: at a low difficulty thousands a second would cost the network thread and bury the log.
#: The window shows shares in the counters and charts instead; their warnings still come.
PER_SHARE_LOGGERS = ("sgm.pool.server",)


def set_engine_log_levels() -> None:
    """The log pane shows the engine's INFO records (sgm alone shows WARNING and up), except
    the per-share ones; levels someone set on purpose are left as they are."""
    engine = logging.getLogger("sgm")
    if engine.level == logging.NOTSET or engine.level > logging.INFO:
        engine.setLevel(logging.INFO)
    for name in PER_SHARE_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


class _NotToldTwice(logging.Filter):
    """Keeps the Stratum client's records below ERROR out of the log pane: the Miner tells
    the same happenings (connected, disconnected, difficulty, refused worker) as telemetry
    log events, which the pane shows as "pool: ..." lines (as the CLI prints them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not (
            record.name == "sgm.stratum" or record.name.startswith("sgm.stratum."))


#: The first bytes of what QWidget.saveGeometry writes (its magic number, big-endian).
GEOMETRY_MAGIC = bytes.fromhex("01d9d0cb")
#: Qt platforms without a real screen: the window size they save is no use on one.
HEADLESS = frozenset({"offscreen", "minimal"})


def format_uptime(seconds: float) -> str:
    s = int(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def display_rates(snap: dict[str, Any]) -> dict[str, float]:
    """Each device's rate as the window shows it: the engine's smooth 5 s average while
    the device works, 0 as soon as it did no work over the last snapshot interval (the
    average alone would take many seconds to decay after a device is switched off)."""
    now = snap.get("rates_now") or {}
    out: dict[str, float] = {}
    for dev in snap["summary"].get("devices", []):
        name = dev["name"]
        rate = float((dev.get("rates") or {}).get("5s", 0.0))
        out[name] = 0.0 if now.get(name, 1.0) == 0.0 or not snap.get("running", True) else rate
    return out


def share_outcome(ev: ShareEvent) -> str:
    """A share result as the charts name it."""
    if ev.accepted:
        return "accepted"
    return "stale" if ev.reason == "stale" else "rejected"


def by_user_agrees(parent: QWidget, path: Path, invalid: Path) -> bool:
    """Ask whether an unreadable settings file may be replaced (Keep is the default)."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Replace the settings file?",
                      f"The settings file {path} could not be read, so sgm has left it as it "
                      "is and is not saving your changes.\n\nReplace it with the current "
                      f"settings? The original is kept as {invalid}.", parent=parent)
    replace = box.addButton("Replace the file", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("Keep the file", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.exec()
    return box.clickedButton() is replace


class MainWindow(QMainWindow):
    """sgm's window.  ``config`` is what mining starts with (flags over the config file);
    ``settings`` what the file holds (saved back to ``settings_path`` on changes);
    ``warnings`` the problems found loading it (shown, never fatal)."""

    #: the window really closed (mining stopped); the app quits on it
    closed = Signal()

    def __init__(self, bridge: EngineBridge, config: MinerConfig, settings: GuiSettings,
                 settings_path: Path | None = None, warnings: list[str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.config = config
        self.settings = settings
        self.settings_path = settings_path
        self._snap: dict[str, Any] | None = None
        self._snap_dirty = False
        self._charts_dirty = False     # a snapshot came since the charts last redrew
        self._quitting = False
        self._stopped_for_close = False
        self._engine_stopped = False
        self._close_deadline: float | None = None
        self._close_watch: QTimer | None = None
        self._tray_told = False
        self._finished_handled = False
        #: the file had fields that did not load: rewrite it only for a change the user made
        self._file_had_problems = bool(warnings)
        self._user_changed_settings = False
        #: the settings file is not a JSON object and the user said to leave it: no saves
        self._keep_unreadable_file = False
        #: the header and status-bar state now (what the next snapshot may change)
        self.state_text = "Starting…"
        #: the reason mining could not start (None: it started or was not tried)
        self.start_error: str | None = None
        #: called once when quitting begins, while the window still shows the mining state
        #: (the app's --screenshot)
        self.before_quit: Callable[[], None] | None = None
        #: the lateness (ms) of each timer tick, for the responsiveness checks
        self.tick_lateness_ms: list[float] = []
        self._last_tick = time.monotonic()
        #: devices switched off while a benchmark measures, switched on again after it
        self._bench_paused: list[str] = []
        #: the CPU kernel mining uses now (from the snapshots; None: not mining on a CPU)
        self._mining_kernel: str | None = None
        #: time spent mining this session: a pool connected and a device working (the
        #: engine's elapsed_s counts from the start, unreachable pools included); the
        #: elapsed_s of the snapshot it was last added from (None: a new session)
        self.mined_s = 0.0
        self._mined_mark: float | None = None

        self.setWindowTitle("sgm")
        self.setWindowIcon(make_icon())
        self.setMinimumSize(QSize(720, 480))
        self._build_tabs()
        self._build_status_bar()
        self._build_menus()
        self._build_tray()
        self._connect_bridge()
        self._restore_geometry()
        for warning in warnings or []:
            self.show_warning(warning)

        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    # ------------------------------------------------------------ building
    def _build_tabs(self) -> None:
        self.tabs = QTabWidget(self)
        self.setCentralWidget(self.tabs)

        devices = QWidget()
        lay = QVBoxLayout(devices)
        # problems the user must see (settings file, start failure): a dismissable banner
        self.banner_box = QFrame()
        self.banner_box.setObjectName("banner")
        self.banner_box.setStyleSheet("#banner { background: #fff4ce; border: 1px solid #e0c060; }"
                                      " #banner QLabel { color: #3d2c00; }")
        box = QHBoxLayout(self.banner_box)
        box.setContentsMargins(8, 4, 4, 4)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        box.addWidget(self.banner, 1)
        dismiss = QPushButton("Dismiss")
        dismiss.setToolTip("Hide these messages (they stay in the Log tab)")
        dismiss.clicked.connect(self._dismiss_banner)
        box.addWidget(dismiss, 0, Qt.AlignmentFlag.AlignTop)
        self.banner_box.setVisible(False)
        lay.addWidget(self.banner_box)
        self.session_label = QLabel("Starting…")
        self.session_label.setTextFormat(Qt.TextFormat.PlainText)
        self.session_label.setWordWrap(True)
        self.session_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                         QSizePolicy.Policy.Preferred)
        lay.addWidget(self.session_label)
        self.model = DeviceTableModel(self)
        self.model.toggle_requested.connect(self._on_toggle)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        # one Tab stop: arrows move inside, Tab leaves for the buttons and the tab bar
        self.table.setTabKeyNavigation(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setHighlightSections(False)
        self._base_widths: list[int] = []
        self._size_columns()
        self.table.viewport().installEventFilter(self)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        lay.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.start_all_button = QPushButton("&Start all")
        self.start_all_button.setToolTip(f"Start mining, or switch every device on ({START_KEY})")
        self.start_all_button.clicked.connect(self.start_all)
        self.stop_all_button = QPushButton("Sto&p all")
        self.stop_all_button.setToolTip(f"Switch every device off; the pool stays connected "
                                        f"({STOP_KEY})")
        self.stop_all_button.clicked.connect(self.stop_all)
        buttons.addWidget(self.start_all_button)
        buttons.addWidget(self.stop_all_button)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        self.tabs.addTab(devices, "&Devices")

        self.charts = ChartsPanel(window_s=CHART_WINDOW_S)
        self.tabs.addTab(self.charts, "&Charts")

        self.pool_panel = PoolPanel()
        self.pool_panel.set_pools(list(self.config.pools))
        self.pool_panel.pools_changed.connect(self._on_pools_changed)
        self.pool_panel.set_suggest_diff(self.config.suggest_difficulty)
        self.pool_panel.suggest_diff_changed.connect(self._on_suggest_diff_changed)
        self.tabs.addTab(self.pool_panel, "P&ools")

        self.log_pane = LogPane()
        set_engine_log_levels()
        handler = self.log_pane.attach(logging.getLogger("sgm"))
        handler.addFilter(_NotToldTwice())
        self.tabs.addTab(self.log_pane, "Lo&g")

        self.bench_tab = BenchTab()
        self.bench_tab.mining_now = lambda: self.bridge.running
        self.bench_tab.mining_kernel = self.mining_kernel
        self.bench_tab.configured_kernel = self.config.impl
        self.bench_tab.run_started.connect(self._pause_for_bench)
        self.bench_tab.run_ended.connect(self._resume_after_bench)
        self.bench_tab.kernel_chosen.connect(self._on_kernel_chosen)
        self.tabs.addTab(self.bench_tab, "&Benchmark")

        # other miners watched through their cgminer APIs (polled off this thread)
        self.rigs_tab = RigsTab(list(self.settings.rigs))
        self.rigs_tab.rigs_changed.connect(self._on_rigs_changed)
        # Alt+R (the Benchmark tab's Run button uses Alt+U: a tab's key must be free on
        # every page, a page's own keys only on that page)
        self.tabs.addTab(self.rigs_tab, "&Rigs")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        # Ctrl+Tab / Ctrl+PgDn (and back) switch tabs wherever the focus is, the table too
        for keys, step in (("Ctrl+Tab", 1), ("Ctrl+PgDown", 1), ("Ctrl+Shift+Tab", -1),
                           ("Ctrl+Backtab", -1), ("Ctrl+PgUp", -1)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(lambda s=step: self.switch_tab(s))

    def _size_columns(self) -> None:
        """Columns wide enough for the largest value they will plausibly show (sized from
        sample texts, not from the first values, which are all zeros): nothing is clipped
        as rates and counts grow; a narrow window scrolls sideways instead of squeezing."""
        fm = self.table.fontMetrics()
        header_fm = self.table.horizontalHeader().fontMetrics()
        by_column = {COL_NAME: "opencl0.0", COL_KIND: "opencl", COL_IMPL: "sha-ni-sse",
                     COL_ENABLED: "\u2611 pending", COL_RATE_5S: "999.99 MH/s",
                     COL_RATE_1M: "999.99 MH/s", COL_BATCH: "999.99 M", COL_LATENCY: "999.9 ms",
                     COL_UTIL: "100 %", COL_ACCEPTED: "999,999", COL_HW: "9,999"}
        samples = [by_column[c] for c in range(len(by_column))]
        self._base_widths = []
        for col, sample in enumerate(samples):
            title = self.model.headerData(col, Qt.Orientation.Horizontal) or ""
            width = max(fm.horizontalAdvance(sample), header_fm.horizontalAdvance(title)) + 18
            self._base_widths.append(width)
            self.table.setColumnWidth(col, width)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt
        """A wider table spreads the extra room over every column (one huge last column
        would push its numbers far from their header); a narrower one scrolls sideways."""
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            total = sum(self._base_widths)
            room = self.table.viewport().width()
            scale = max(1.0, room / total) if total else 1.0
            widths = [int(w * scale) for w in self._base_widths]
            if scale > 1.0 and widths:
                widths[-1] += room - sum(widths)      # no gap from rounding
            for col, width in enumerate(widths):
                self.table.setColumnWidth(col, width)
        return super().eventFilter(watched, event)

    def switch_tab(self, step: int) -> None:
        """The next (+1) or previous (-1) tab, wrapping around."""
        count = self.tabs.count()
        self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % count)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        # what the session is doing, and why not when it cannot (the same words as the
        # header above the device table); it takes the room the counters leave
        self.lbl_state = QLabel("Starting…")
        self.lbl_state.setTextFormat(Qt.TextFormat.PlainText)
        self.lbl_state.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.lbl_state.setContentsMargins(6, 0, 6, 0)
        bar.addPermanentWidget(self.lbl_state, 1)
        self.lbl_rate = QLabel("0 H/s")
        self.lbl_accepted = QLabel("Accepted 0")
        self.lbl_rejected = QLabel("Rejected 0")
        self.lbl_stale = QLabel("Stale 0")
        self.lbl_best = QLabel("Best share 0")
        self.lbl_uptime = QLabel("Up 0:00:00")
        tips = {self.lbl_rate: "Total hash rate (5 s average)",
                self.lbl_accepted: "Shares the pool accepted",
                self.lbl_rejected: "Shares the pool rejected (reasons here once there are any)",
                self.lbl_stale: "Shares found for a job that was already gone",
                self.lbl_best: "Highest difficulty of a share found",
                self.lbl_uptime: "Time mining (this session)"}
        for label in (self.lbl_rate, self.lbl_accepted, self.lbl_rejected, self.lbl_stale,
                      self.lbl_best, self.lbl_uptime):
            label.setToolTip(tips[label])
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)

    def _build_menus(self) -> None:
        menu_file = self.menuBar().addMenu("&File")
        self.act_quit = QAction("&Quit", self)
        self.act_quit.setShortcut(QKeySequence.StandardKey.Quit)
        self.act_quit.triggered.connect(self.request_quit)
        menu_file.addAction(self.act_quit)

        menu_mining = self.menuBar().addMenu("&Mining")
        self.act_start_all = QAction("&Start all", self)
        self.act_start_all.setShortcut(QKeySequence(START_KEY))
        self.act_start_all.triggered.connect(self.start_all)
        self.act_stop_all = QAction("S&top all", self)
        self.act_stop_all.setShortcut(QKeySequence(STOP_KEY))
        self.act_stop_all.triggered.connect(self.stop_all)
        menu_mining.addActions([self.act_start_all, self.act_stop_all])

        menu_settings = self.menuBar().addMenu("Se&ttings")
        self.act_close_to_tray = QAction("&Close to tray", self)
        self.act_close_to_tray.setCheckable(True)
        self.act_close_to_tray.setChecked(bool(self.settings.close_to_tray))
        self.act_close_to_tray.setToolTip("Closing the window keeps mining in the tray; "
                                          "quit from the tray menu or File > Quit")
        self.act_close_to_tray.toggled.connect(self._on_close_to_tray)
        menu_settings.addAction(self.act_close_to_tray)
        self.act_threads = QAction("CPU &threads…", self)
        self.act_threads.setToolTip("How many CPU threads mine (one device each); "
                                    "mining restarts with the new count")
        self.act_threads.triggered.connect(self.ask_threads)
        menu_settings.addAction(self.act_threads)

        menu_help = self.menuBar().addMenu("&Help")
        self.act_readme = QAction("&README", self)
        self.act_readme.setShortcut(QKeySequence.StandardKey.HelpContents)
        self.act_readme.triggered.connect(self.open_readme)
        self.act_about = QAction("&About sgm", self)
        self.act_about.triggered.connect(self.show_about)
        menu_help.addActions([self.act_readme, self.act_about])

    def _build_tray(self) -> None:
        self.tray: QSystemTrayIcon | None = None
        if not QSystemTrayIcon.isSystemTrayAvailable():
            # the setting is kept (another desktop may have a tray) but cannot act here
            self.act_close_to_tray.setEnabled(False)
            self.act_close_to_tray.setText("&Close to tray (no system tray on this desktop)")
            return
        tray = QSystemTrayIcon(self.windowIcon(), self)
        menu = QMenu(self)
        # the rate and state at a glance, then pause / resume without opening the window
        self.tray_rate = menu.addAction("Starting…")
        self.tray_rate.setEnabled(False)
        menu.addSeparator()
        show = menu.addAction("Show window")
        show.triggered.connect(self._show_from_tray)
        menu.addAction(self.act_start_all)
        menu.addAction(self.act_stop_all)
        menu.addSeparator()
        menu.addAction(self.act_quit)
        tray.setContextMenu(menu)
        tray.setToolTip("sgm — starting")
        tray.activated.connect(self._on_tray_activated)
        tray.show()
        self.tray = tray

    def _connect_bridge(self) -> None:
        queued = Qt.ConnectionType.QueuedConnection
        b = self.bridge
        b.snapshot.connect(self._on_snapshot, queued)
        b.events.connect(self._on_events, queued)
        b.started.connect(self._on_started, queued)
        b.failed.connect(self._on_failed, queued)
        b.stopped.connect(self._on_stopped, queued)
        b.message.connect(self._on_message, queued)

    def _restore_geometry(self) -> None:
        geometry = self.settings.geometry
        if geometry:
            try:
                blob = base64.b64decode(geometry)
                ok = self.restoreGeometry(QByteArray(blob))
            except ValueError:
                blob, ok = b"", False
            if ok:
                self._fit_into(self._available_geometry())
                return
            if blob[:4] == GEOMETRY_MAGIC:
                # a size Qt saved on a screen of another width (a headless run's 800-pixel
                # screen, a laptop off its monitor): Qt refuses it, the default size fits
                # this screen, and nothing is wrong with the file
                log.info("saved window size is from another screen; using the default")
            else:
                self.show_warning("The saved window size could not be used; using the default")
        self.resize(fit_size(self._available_geometry()))

    def _available_geometry(self) -> QRect:
        """The free area (without panels) of the screen the window opens on."""
        screen = self.screen()
        return screen.availableGeometry() if screen is not None else QRect(0, 0, 1366, 768)

    def _fit_into(self, available: QRect) -> None:
        """A saved size from a larger screen is shrunk to fit this one."""
        fitted = fit_size(available, self.size())
        if fitted != self.size():
            self.resize(fitted)

    # ------------------------------------------------------------ messages
    def show_warning(self, text: str) -> None:
        """A problem the user should know about (settings file, start failure): in the
        banner above the device table, the status bar and the log pane."""
        current = self.banner.text()
        self.banner.setText(f"{current}\n{text}" if current else text)
        self.banner_box.setVisible(True)
        self.statusBar().showMessage(text, 15000)
        self.log_pane.append("WARNING", text, time.time())

    def _dismiss_banner(self) -> None:
        self.banner.clear()
        self.banner_box.setVisible(False)

    def _drop_start_failures(self) -> None:
        """A start that worked makes earlier "could not start" lines stale."""
        lines = [ln for ln in self.banner.text().split("\n")
                 if ln and not ln.startswith(START_FAILED)]
        self.banner.setText("\n".join(lines))
        self.banner_box.setVisible(bool(lines))

    # ------------------------------------------------------------ mining control
    def start_mining(self) -> None:
        """Start a session with the current config (devices switched off stay off)."""
        self.session_label.setText("Starting: measuring the devices…")
        self.start_error = None
        self.bridge.start(self.config, list(self.settings.disabled_devices))

    def start_all(self) -> None:
        """Start mining if stopped; while mining, switch every device on."""
        self.settings.disabled_devices = []
        self.settings.unread.discard("gui.disabled_devices")
        if self.bridge.running:
            self.bridge.set_all_enabled(True)
            self.model.mark_wanted(True)
        elif not self.bridge.busy:
            # rows stay (keyed by device name): the new session's snapshots update them
            self.start_mining()
        self._save_settings("gui.disabled_devices")

    def stop_all(self) -> None:
        """Switch every device off; the pool stays connected, Start all resumes."""
        self._bench_paused = []     # the end of a benchmark must not switch them back on
        if self.bridge.running:
            self.bridge.set_all_enabled(False)
            self.model.mark_wanted(False)
            self.settings.disabled_devices = self.model.names()
            self._save_settings("gui.disabled_devices")
            self._set_state("Stopping every device…", "Stopping…")

    def _on_toggle(self, name: str, enabled: bool) -> None:
        self.bridge.set_device_enabled(name, enabled)
        if enabled and name in self._bench_paused:
            self._bench_paused.remove(name)     # the user took it back
        self.settings.disabled_devices = self._user_disabled()
        self._save_settings("gui.disabled_devices")

    def _user_disabled(self) -> list[str]:
        """The devices the user switched off (not those a benchmark paused)."""
        return [n for n in self.model.disabled_devices() if n not in self._bench_paused]

    # ------------------------------------------------------------ benchmark and kernel
    def mining_kernel(self) -> str | None:
        """The CPU kernel the running CPU devices mine with (None: no CPU device mines)."""
        return self._mining_kernel

    def _pause_for_bench(self, _device: str) -> None:
        """A benchmark starts: switch the working devices off (when the tab asks to) so the
        figures are the kernels' own; the pool stays connected, the counters are kept, and
        the settings file keeps the user's own on/off choices."""
        if not self.bench_tab.pause_check.isChecked() or not self.bridge.running:
            return
        self._bench_paused = [n for n in self.model.names()
                              if n not in self.model.disabled_devices()]
        for name in self._bench_paused:
            self.bridge.set_device_enabled(name, False)
        if self._bench_paused:
            self.log_pane.append("INFO", "Mining paused while the benchmark measures: "
                                 + ", ".join(self._bench_paused), time.time())

    def _resume_after_bench(self) -> None:
        paused, self._bench_paused = self._bench_paused, []
        if not paused or self._quitting or not self.bridge.running:
            return
        for name in paused:
            self.bridge.set_device_enabled(name, True)
        self.log_pane.append("INFO", "The benchmark ended: mining resumed on "
                             + ", ".join(paused), time.time())

    def _on_kernel_chosen(self, impl: str, reason: str) -> None:
        running = self.mining_kernel()
        later = (f" Mining keeps {running} until it starts again (Stop all and Start all "
                 "do not restart it; quitting and starting the app does)."
                 if running and running != impl else "")
        self.statusBar().showMessage(f"{impl} is the CPU default kernel from the next start "
                                     "of mining", 10000)
        self.log_pane.append("INFO", f"CPU default kernel: {reason}.{later}", time.time())

    def confirm(self, title: str, text: str, action: str) -> bool:
        """Ask before a change that restarts mining; True when the user agreed (``action``
        names the button that goes ahead, Cancel is the default)."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=self)
        go = box.addButton(action, QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        return box.clickedButton() is go

    def _on_pools_changed(self, pools: list[PoolConfig]) -> None:
        """The user accepted a pool edit.  A pool added below the ones mined is a new
        failover: handed to the running session, nothing restarts.  Any other change while
        mining restarts it, which resets every counter: the user confirms first (Cancel
        puts the list back)."""
        old = list(self.config.pools)
        mining = self.bridge.running or self.bridge.busy
        backup_only = bool(old) and len(pools) == len(old) + 1 and list(pools[:-1]) == old
        where = ", ".join(p.url for p in pools) or "the embedded local pool"
        if mining and not backup_only and not self.confirm(
                "Restart mining?",
                f"Mining restarts on {where}.\n\nThe counters (accepted, rejected, best "
                "share) and the uptime start again from zero.",
                "Restart mining"):
            self.pool_panel.set_pools(old)
            self.statusBar().showMessage("Pools unchanged: mining goes on", 5000)
            return
        self.settings.pools = list(pools)
        self._save_settings("pools")
        self.config = pools_config(self.config, pools)
        if not mining:
            return
        if backup_only:
            log.info("backup pool %s added to the running session", pools[-1].url)
            self.bridge.add_pool(pools[-1])
            self.statusBar().showMessage(f"Backup pool {pools[-1].url} added; mining goes on",
                                         5000)
            return
        log.info("pools changed: restarting mining on %s", where)
        self._set_state(f"Restarting on {where}…", "Restarting…")
        self.bridge.restart(self.config, list(self.settings.disabled_devices))

    def _on_suggest_diff_changed(self, value: float | None) -> None:
        """The user set the share difficulty asked of the pools (None: the pool decides):
        saved, and sent by a restart when a pool is mined (the user confirms first, Cancel
        puts the field back); the embedded pool does not take suggestions."""
        mining = (self.bridge.running or self.bridge.busy) and bool(self.config.pools)
        words = "the pool's own difficulty" if value is None else f"share difficulty {value:g}"
        if mining and not self.confirm(
                "Restart mining?",
                f"Mining restarts to ask the pools for {words}.\n\nThe counters (accepted, "
                "rejected, best share) and the uptime start again from zero.",
                "Restart mining"):
            self.pool_panel.set_suggest_diff(self.config.suggest_difficulty)
            self.statusBar().showMessage("Share difficulty unchanged: mining goes on", 5000)
            return
        self.settings.suggest_diff = value
        self._save_settings("suggest-diff")
        self.config = dataclasses.replace(self.config, suggest_difficulty=value)
        if mining:
            log.info("asking the pools for %s: restarting mining", words)
            self._set_state(f"Restarting to ask for {words}…", "Restarting…")
            self.bridge.restart(self.config, list(self.settings.disabled_devices))

    def ask_threads(self) -> None:
        """Settings > CPU threads…: 0 means one per core; the dialog says that mining
        restarts (OK is the confirmation)."""
        cores = os.cpu_count() or 1
        restart = ("\n\nMining restarts with the new count: the counters and the uptime "
                   "start again from zero." if self.bridge.running or self.bridge.busy else "")
        threads, ok = QInputDialog.getInt(
            self, "CPU threads", f"CPU threads to mine with (0: one per core; this machine has "
            f"{cores}):{restart}", self.config.threads or 0, 0, 1024)
        if ok:
            self.set_threads(threads or None)

    def set_threads(self, threads: int | None) -> None:
        """Mine with ``threads`` CPU threads (None: one per core): saved, and applied by a
        restart when mining."""
        if threads is not None and not 1 <= threads <= 1024:
            self.show_warning(f"CPU threads must be 1..1024, got {threads}")
            return
        self.settings.threads = threads
        self._save_settings("threads")
        if threads == self.config.threads:
            return
        self.config = dataclasses.replace(self.config, threads=threads)
        if self.bridge.running or self.bridge.busy:
            log.info("CPU threads: %s; restarting mining", threads or "one per core")
            self.bridge.restart(self.config, list(self.settings.disabled_devices))

    def _on_rigs_changed(self, rigs: list[str]) -> None:
        """The user added or removed a rig: saved in the file's "rigs" (sgm farm -c)."""
        self.settings.rigs = list(rigs)
        self._save_settings("rigs")

    def _on_close_to_tray(self, checked: bool) -> None:
        self.settings.close_to_tray = bool(checked)
        self._save_settings("gui.close_to_tray")

    def _save_settings(self, changed: str | None = None, by_user: bool = True) -> None:
        """Write the settings file.  ``changed``: the file key the user just set (its value
        in the file, if it could not be read, is now replaced); ``by_user``: a change the
        user made (the window's own size at close is not one).  A file that is not JSON is
        replaced only if the user agrees, asked once."""
        if changed is not None:
            self.settings.unread.discard(changed)
            if changed.startswith("gui."):
                self.settings.unread.discard("gui")
        if by_user:
            self._user_changed_settings = True
        if self.settings_path is None or self._keep_unreadable_file:
            return
        try:
            save_settings(self.settings_path, self.settings)
        except UnreadableSettingsFile:
            self._ask_to_replace_unreadable()
        except (OSError, ValueError) as exc:
            self.show_warning(f"Settings not saved: {exc}")

    def _ask_to_replace_unreadable(self) -> None:
        """The file could not be read at start: ask before replacing it, once."""
        path = self.settings_path
        assert path is not None
        invalid = path.with_name(path.name + ".invalid")
        if not by_user_agrees(self, path, invalid):
            self._keep_unreadable_file = True
            log.info("settings file %s left as it is: changes are not saved", path)
            self.show_warning(f"Settings are not saved this session: {path} is left as it is "
                              "(fix or delete it to save settings again)")
            return
        try:
            save_settings(path, self.settings, replace_unreadable=True)
        except (OSError, ValueError) as exc:
            self.show_warning(f"Settings not saved: {exc}")
            return
        # the banner's "left as it is" is no longer true: say what happened instead
        lines = [ln for ln in self.banner.text().split("\n")
                 if ln and not (str(path) in ln and "left as it is" in ln)]
        self.banner.setText("\n".join(lines))
        self.banner_box.setVisible(bool(lines))
        self.show_warning(f"Settings file {path} replaced with the current settings; the "
                          f"unreadable original is kept as {invalid}")

    # ------------------------------------------------------------ bridge slots (plain state)
    def _on_snapshot(self, snap: dict[str, Any]) -> None:
        self._snap = snap
        self._snap_dirty = True
        self._charts_dirty = True
        self.model.set_running(bool(snap.get("running", True)))
        self.model.update_from_summary(snap["summary"], snap.get("rates_now"))
        per_device = display_rates(snap)
        self.charts.add_rates(snap["t"], sum(per_device.values()), per_device)
        summary = snap["summary"]   # exact counts, whatever share samples a flood thinned out
        self.charts.set_share_totals(snap["t"], {o: int(summary.get(o, 0))
                                                 for o in ("accepted", "rejected", "stale")})
        active = [p for p in snap.get("pools", []) if p.get("active")]
        self.charts.set_pool_difficulty(active[0]["difficulty"] if active else None)
        self.model.set_waiting(bool(snap.get("running")) and bool(snap.get("pools"))
                               and not active)
        self._count_mined_time(snap, bool(active))
        # (a CPU device switched off, or paused for a benchmark, keeps its kernel)
        cpus = [d for d in summary.get("devices") or [] if d.get("kind") == "cpu"]
        kernel = str(cpus[0].get("impl")) if cpus and snap.get("running") else None
        if kernel != self._mining_kernel:
            self._mining_kernel = kernel
            self.bench_tab.refresh_kernel()

    def _count_mined_time(self, snap: dict[str, Any], connected: bool) -> None:
        """Add the time since the last snapshot to the uptime when, over it, a pool was
        connected and a device was switched on: waiting for an unreachable pool, or with
        every device off, is not mining."""
        elapsed = float(snap["summary"].get("elapsed_s", 0.0))
        mark = self._mined_mark
        if mark is None or elapsed < mark:      # a new session: its uptime starts at zero
            self.mined_s, mark = 0.0, (0.0 if mark is None else elapsed)
        working = any(d.get("enabled") for d in snap["summary"].get("devices") or [])
        if connected and working and snap.get("running"):
            self.mined_s += elapsed - mark
        self._mined_mark = elapsed

    def _on_events(self, events: list[Any]) -> None:
        charts, pane = self.charts, self.log_pane
        for ev in events:
            if isinstance(ev, ShareEvent):
                charts.add_share(ev.ts, share_outcome(ev), float(ev.difficulty))
            elif isinstance(ev, LogEvent):
                pane.append(ev.level, ev.message, ev.ts)
            elif isinstance(ev, DeviceEvent) and ev.what == "hw_error":
                pane.append("WARNING", f"{ev.device}: hardware error {ev.detail}".rstrip(),
                            ev.ts)

    def _on_started(self) -> None:
        """Mining started: the header follows from the snapshots (never from calls into
        the engine on this thread)."""
        self._finished_handled = False
        self._mined_mark = None           # the new session's uptime starts at zero
        self._set_state("Started: waiting for the pool…", "Starting…")
        self._drop_start_failures()
        if self.bridge.last_snapshot is not None and self.bridge.last_snapshot.get("running"):
            self._on_snapshot(self.bridge.last_snapshot)

    def _set_state(self, header: str, state: str, tooltip: str = "") -> None:
        """The session's state in the header above the table and in the status bar."""
        self.state_text = state
        if self.session_label.text() != header:
            self.session_label.setText(header)
        self.session_label.setToolTip(tooltip)
        if self.lbl_state.text() != state:
            self.lbl_state.setText(state)
        self.lbl_state.setToolTip(header if header != state else tooltip)

    def _describe_session(self, snap: dict[str, Any]) -> None:
        """Header and status-bar state from one snapshot: mining what, stopped, or which
        pool cannot be reached, why, and when it is tried again."""
        pools = [p for p in snap.get("pools") or [] if isinstance(p, dict)]
        devices = snap["summary"].get("devices") or []
        all_off = bool(devices) and not any(d.get("enabled") for d in devices)
        local = bool(pools) and pools[0].get("state") == "local"
        active = next((p for p in pools if p.get("active")), None)
        cfg = self.config
        if local:
            bits = cfg.local_difficulty_bits
            jobs = cfg.local_job_interval
            where = f"the embedded local pool at {pools[0].get('url')}"
            detail = (f" — share difficulty {2.0 ** (bits - 32):.3g}, "
                      + (f"{cfg.local_jobs} job(s) of {jobs:g} s" if cfg.local_jobs
                         else f"new job every {jobs:g} s"))
            tip = (f"A share must reach difficulty {2.0 ** (bits - 32):.6g}: its hash starts "
                   f"with {bits} zero bits")
        elif active is not None:
            where = f"{active.get('url')} as {active.get('user') or '-'}"
            detail, tip = "", ""
        else:
            problem = connection_problem(pools)
            self._set_state(f"Not mining: {problem}", problem,
                            "Mining starts by itself once a pool answers; the Pools tab "
                            "shows each pool's state")
            return
        if all_off and self._bench_paused:
            self._set_state(f"Paused while the benchmark measures (connected to {where}); "
                            "mining resumes when it ends.", "Paused")
        elif all_off:
            self._set_state(f"Stopped: every device is switched off (connected to {where}). "
                            "Start all resumes.", "Stopped")
        else:
            self._set_state(f"Mining {where}{detail}", "Mining", tip)

    def _on_failed(self, reason: str) -> None:
        self.start_error = reason
        self.session_label.setText("Not mining.")
        self.show_warning(f"{START_FAILED} {reason}")

    def _on_stopped(self) -> None:
        self.model.set_running(False)
        if not self._quitting:
            self._set_state(
                ("The embedded pool issued all its jobs: mining stopped. "
                 if self._finished_handled else "Stopped. ") + "Start all mines again.",
                "Stopped")
            self.setWindowTitle("Stopped — sgm")
        self._snap_dirty = True
        if self._quitting:
            self._engine_stopped = True
            self._maybe_finish_close()

    def _on_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 10000)
        self.log_pane.append("WARNING", text, time.time())

    # ------------------------------------------------------------ the timer
    def _tick(self) -> None:
        now = time.monotonic()
        self.tick_lateness_ms.append(max(0.0, (now - self._last_tick) * 1e3 - TICK_MS))
        if len(self.tick_lateness_ms) > 100_000:
            del self.tick_lateness_ms[:50_000]
        self._last_tick = now
        try:
            self.model.apply()
            # the charts redraw when data came (snapshots at 2 Hz), not at every tick
            if self._charts_dirty and self.tabs.currentWidget() is self.charts \
                    and self.charts.isVisible():
                self._charts_dirty = False
                self.charts.refresh()
            if self._snap_dirty and self._snap is not None:
                self._snap_dirty = False
                self._apply_counters(self._snap)
        except Exception:   # noqa: BLE001 - a display glitch must not kill the app
            log.exception("window update failed")

    def _apply_counters(self, snap: dict[str, Any]) -> None:
        s = snap["summary"]
        rate = sum(display_rates(snap).values())
        if snap.get("running") and not self._quitting:
            self._describe_session(snap)
            # the rate where a taskbar shows it, as miners do
            title = {"Mining": format_rate(rate), "Stopped": "Stopped",
                     "Paused": "Paused"}.get(self.state_text, "Not mining")
            self.setWindowTitle(f"{title} — sgm")
        self.lbl_rate.setText(format_rate(rate))
        self.lbl_accepted.setText(f"Accepted {s['accepted']:,}")
        self.lbl_rejected.setText(f"Rejected {s['rejected']:,}")
        reasons = s.get("rejected_reasons") or {}
        self.lbl_rejected.setToolTip(
            "Rejected shares by reason:\n" + "\n".join(f"  {r}: {n:,}" for r, n in
                                                         sorted(reasons.items()))
            if reasons else "Shares the pool rejected (none so far)")
        self.lbl_stale.setText(f"Stale {s['stale']:,}")
        self.lbl_best.setText(f"Best share {float(s['best_share_diff']):.4g}")
        self.lbl_uptime.setText(f"Up {format_uptime(self.mined_s)}")
        self.lbl_uptime.setToolTip(
            f"Time mining this session: counts while a pool is connected and a device is "
            f"on ({format_uptime(float(s['elapsed_s']))} since mining was started)")
        self.pool_panel.set_status(list(snap.get("pools", [])))
        dropped = int(snap.get("dropped", 0))
        self.charts.setToolTip(f"{dropped:,} share samples not charted (flood); counters are "
                               "exact" if dropped else "")
        if self.tray is not None:
            self.tray.setToolTip(f"sgm — {format_rate(rate)}, {s['accepted']:,} accepted")
            self.tray_rate.setText(f"{self.state_text}: {format_rate(rate)}, "
                                   f"{s['accepted']:,} accepted")
        if snap.get("finished") and snap.get("running") and not self._finished_handled:
            self._finished_handled = True   # the embedded pool issued all its --jobs
            self.session_label.setText("The embedded pool finished its jobs; stopping.")
            self.bridge.stop()

    # ------------------------------------------------------------ help
    def about_text(self) -> str:
        """What Help > About says: version, licence, where the settings live."""
        where = str(self.settings_path) if self.settings_path is not None else "not saved"
        readme = readme_path()
        return (f"sgm {__version__} — SHA-256d miner\n\n"
                f"Licence: {LICENSE}\n"
                f"Settings file: {where} (the same file 'sgm -c' reads)\n"
                + (f"README: {readme}" if readme else "README: not installed with this copy")
                + "\n\nThe README's sections: " + ", ".join(README_SECTIONS))

    def show_about(self) -> None:
        QMessageBox.about(self, "About sgm", self.about_text())

    def open_readme(self) -> None:
        """Help > README: the README in the desktop's viewer, or where to find it."""
        readme = readme_path()
        if readme is None or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(readme))):
            self.show_about()

    def _on_tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.charts:
            self.charts.refresh()

    def counters(self) -> dict[str, str]:
        """The status bar's texts (tests compare them with the engine's numbers)."""
        return {"rate": self.lbl_rate.text(), "accepted": self.lbl_accepted.text(),
                "rejected": self.lbl_rejected.text(), "stale": self.lbl_stale.text(),
                "best": self.lbl_best.text(), "uptime": self.lbl_uptime.text()}

    # ------------------------------------------------------------ tray and closing
    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            if self.isVisible():
                self.hide()
            else:
                self._show_from_tray()

    def _show_from_tray(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def request_quit(self) -> None:
        """Quit for real (File > Quit, the tray's Quit, --quit-after): stop, then close."""
        self._quitting = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self._stopped_for_close:
            self.timer.stop()
            self.log_pane.detach()
            if self.tray is not None:
                self.tray.hide()
            event.accept()
            self.closed.emit()
            return
        if (not self._quitting and self.settings.close_to_tray and self.tray is not None
                and self.tray.isVisible()):
            event.ignore()
            self.hide()
            if not self._tray_told:
                self._tray_told = True
                self.tray.showMessage("sgm keeps mining",
                                      "The window is in the tray; quit from its menu.",
                                      QSystemTrayIcon.MessageIcon.Information, 4000)
            return
        event.ignore()
        if self._close_deadline is not None:
            return          # already stopping
        self._quitting = True
        if self.before_quit is not None:
            hook, self.before_quit = self.before_quit, None
            try:
                hook()
            except Exception:   # noqa: BLE001 - quitting goes on
                log.exception("before-quit hook failed")
        if not (self.settings.geometry and QGuiApplication.platformName() in HEADLESS):
            # (a headless run keeps the size saved on a real screen: its own is no use there)
            self.settings.geometry = base64.b64encode(
                bytes(self.saveGeometry().data())).decode()
        if self.model.names():   # (no rows: mining never started; keep the file's list)
            self.settings.disabled_devices = self._user_disabled()
        if self._file_had_problems and not self._user_changed_settings:
            # saving would put defaults over the fields the user may want to fix by hand
            log.info("settings file %s has problems (see the warnings); not rewritten",
                     self.settings_path)
        else:
            if "gui" not in self.settings.unread:   # the window's size is its own to keep
                self.settings.unread.discard("gui.geometry")
            self._save_settings(by_user=False)
        self.session_label.setText("Stopping…")
        self.statusBar().showMessage("Stopping mining…")
        for w in (self.start_all_button, self.stop_all_button):
            w.setEnabled(False)
        # the ordered shutdown: 1. the display timer, 2. (on the bridge's worker) the
        # telemetry consumer, 3. Miner.stop with its timeout; a benchmark is cancelled
        self.timer.stop()
        self.rigs_tab.shutdown()     # its polls are cancelled; its thread ends
        self._close_deadline = time.monotonic() + CLOSE_GRACE_S
        self.bench_tab.cancel()      # its thread ends after the current measurement
        self.bridge.stop()
        self._close_watch = QTimer(self)
        self._close_watch.setInterval(TICK_MS)
        self._close_watch.timeout.connect(self._watch_close)
        self._close_watch.start()

    def _watch_close(self) -> None:
        """While closing: finish once everything stopped, or give up after CLOSE_GRACE_S
        (the engine's threads are daemons: they cannot keep the process alive)."""
        self._maybe_finish_close()
        deadline = self._close_deadline
        if not self._stopped_for_close and deadline is not None and time.monotonic() > deadline:
            log.warning("mining did not stop within %.0f s; closing anyway", CLOSE_GRACE_S)
            self._finish_close()

    def _maybe_finish_close(self) -> None:
        """Close once mining stopped and no benchmark thread is left."""
        if (self._quitting and self._engine_stopped and not self._stopped_for_close
                and not self.bench_tab.is_running()):
            self._finish_close()

    def _finish_close(self) -> None:
        self._stopped_for_close = True
        self._close_deadline = None
        if self._close_watch is not None:
            self._close_watch.stop()
        self.bridge.close()
        self.close()
