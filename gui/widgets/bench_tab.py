"""The Benchmark tab: ``sgm bench`` in the window, on a background thread.

Why reuse :mod:`sgm.bench` as it is: the tab must report the same figures the CLI does
(hash rate per implementation and thread count, and the ratio to a hashlib reference measured
in the same run), so it calls :func:`sgm.bench.run_bench` / :func:`~sgm.bench.run_opencl_bench`
with the CLI's defaults.  A run takes seconds to minutes, so it runs on a plain thread; the
thread touches no widget and reports back through queued signals.  Only one run at a time.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets  # before pyqtgraph: binds it to PySide6

from .charts import BACKGROUND, DEVICE_COLOURS, FOREGROUND

log = logging.getLogger("sgm.gui.bench")

TABLE_COLUMNS = ("Device", "Implementation", "Threads", "MH/s", "vs. hashlib", "CPU default")
COL_DEFAULT = 5

COLUMN_TIPS = (
    "CPU, or the OpenCL device's name",
    "The CPU kernel (instruction set), or the OpenCL program with its vector width and "
    "work-group size",
    "CPU: threads hashing at once. OpenCL: the device's compute units (CUs), all in use; "
    "the Threads option applies to the CPU only",
    "Millions of hashes a second: the median of the repeats",
    "How many times faster than Python's hashlib SHA-256 over the same bytes "
    "(hashes/s x 128 bytes / hashlib bytes/s, measured in the same run); known when the run "
    "ends",
    "Which kernel CPU mining uses when none is set: \"in use\" while mining with it; choose "
    "another with \"Use this kernel\" (it applies from the next start of mining)",
)


class BenchCancelled(Exception):
    """Raised inside the worker (from the progress hook) when cancel() was asked for."""


class _BenchEmitter(QtCore.QObject):
    """Created on the GUI thread; the worker emits, the tab receives (queued)."""

    progress = QtCore.Signal(str)
    measured = QtCore.Signal(object)     # one run's object as soon as it is measured
    done = QtCore.Signal(object)
    failed = QtCore.Signal(str)


def run_measurement(device: str, seconds: float, repeats: int, impls: list[str] | None,
                    thread_counts: list[int] | None, progress=None,
                    on_run=None) -> dict[str, Any]:
    """What ``sgm bench`` measures, with its defaults (every implementation, every thread
    count from 1 to the number of cores; ``--device opencl``: every OpenCL device)."""
    from sgm.api import run_benchmark

    return run_benchmark(device, seconds, repeats, impls, thread_counts, progress, on_run)


class BenchTab(QtWidgets.QWidget):
    """Run button, options, the result table and a bar chart of the implementations."""

    finished = QtCore.Signal(dict)       # the `sgm bench --json` object
    failed = QtCore.Signal(str)          # why a run did not finish
    measured = QtCore.Signal(dict)       # one figure of a running run, its row just shown
    #: a run starts (its device kind) / ended either way: the window pauses mining between
    run_started = QtCore.Signal(str)
    run_ended = QtCore.Signal()
    #: a kernel was kept as the CPU default (its name; the KernelChoice's reason)
    kernel_chosen = QtCore.Signal(str, str)

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, seconds: float = 1.0,
                 repeats: int = 3, impls: list[str] | None = None,
                 thread_counts: list[int] | None = None) -> None:
        super().__init__(parent)
        self._impls = list(impls) if impls else None
        self._thread_counts = list(thread_counts) if thread_counts else None
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._result: dict[str, Any] | None = None
        #: the latest finished run of each device kind: a CPU run and an OpenCL run are
        #: shown side by side, a new run replaces only its own kind's rows
        self._by_device: dict[str, dict[str, Any]] = {}
        self._run_device = "cpu"
        self._emitter = _BenchEmitter(self)
        self._emitter.progress.connect(self._on_progress, QtCore.Qt.QueuedConnection)
        self._emitter.measured.connect(self._on_measured, QtCore.Qt.QueuedConnection)
        #: the runs of the running benchmark measured so far (shown as they come)
        self._partial: list[dict[str, Any]] = []
        #: the runs in the table, row by row
        self._shown: list[dict[str, Any]] = []
        #: the CPU default kernel as last read (sgm.api.KernelChoice; None: unreadable)
        self._choice: Any = None
        self._emitter.done.connect(self._on_done, QtCore.Qt.QueuedConnection)
        self._emitter.failed.connect(self._on_failed, QtCore.Qt.QueuedConnection)

        # options
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("OpenCL", "opencl")
        self.seconds_spin = QtWidgets.QDoubleSpinBox()
        self.seconds_spin.setRange(0.01, 60.0)
        self.seconds_spin.setDecimals(2)
        self.seconds_spin.setSingleStep(0.5)
        self.seconds_spin.setSuffix(" s")
        self.seconds_spin.setValue(seconds)
        self.seconds_spin.setToolTip("Length of one measurement (sgm bench --seconds)")
        self.repeats_spin = QtWidgets.QSpinBox()
        self.repeats_spin.setRange(1, 20)
        self.repeats_spin.setValue(repeats)
        self.repeats_spin.setToolTip("Measurements per figure; the median is shown "
                                     "(sgm bench --repeats)")
        self.threads_spin = QtWidgets.QSpinBox()
        self.threads_spin.setRange(0, 1024)
        self.threads_spin.setSpecialValueText("1 to all cores")
        self.threads_spin.setValue(self._thread_counts[0] if self._thread_counts
                                   and len(self._thread_counts) == 1 else 0)
        self.threads_spin.setToolTip("CPU threads (sgm bench --threads); the lowest value "
                                     "measures every count from 1 to the number of cores")
        # Threads applies to the CPU only: an OpenCL run measures each device whole
        self.device_combo.currentIndexChanged.connect(
            lambda _i: self.threads_spin.setEnabled(self.device_combo.currentData() == "cpu"))
        self.run_button = QtWidgets.QPushButton("R&un benchmark")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status_label = QtWidgets.QLabel("Measures the raw hash rate of each implementation, "
                                             "as the sgm bench command does.")
        self.status_label.setWordWrap(True)
        # how far a run is and about how long it still takes (CPU: one step per
        # implementation and thread count; OpenCL: busy, its device count is not known)
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setVisible(False)
        self.progress_bar.setTextVisible(True)
        self._steps_done = 0
        self._estimate_s: float | None = None
        #: answers whether mining runs now (the window sets it): the figures are then shared
        self.mining_now = lambda: False
        #: the kernel the CPU devices mine with now, or None (the window sets it from its
        #: snapshots)
        self.mining_kernel: Any = lambda: None
        #: the kernel the miner's settings name (--impl), which wins over the default
        self.configured_kernel: str | None = None
        # mining and a benchmark share the processor: by default the window pauses every
        # device while a run measures (unticked: the figures are the shared ones, said so)
        self.pause_check = QtWidgets.QCheckBox("P&ause mining")
        self.pause_check.setChecked(True)
        self.pause_check.setToolTip(
            "Switch every device off while the benchmark runs and back on when it ends, so "
            "the figures are the kernels' own; the pool stays connected and the counters "
            "are kept")
        self.use_button = QtWidgets.QPushButton("Use this &kernel")
        self.use_button.setEnabled(False)
        self.use_button.setToolTip("Keep the selected row's CPU kernel as this CPU's default "
                                   "(what sgm bench --save-default keeps); it applies from "
                                   "the next start of mining")
        self.use_button.clicked.connect(self.use_selected_kernel)
        self.kernel_label = QtWidgets.QLabel()
        self.kernel_label.setWordWrap(True)
        self.kernel_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)

        options = QtWidgets.QHBoxLayout()
        for caption, widget in (("Device", self.device_combo),
                                ("Each measurement", self.seconds_spin),
                                ("Repeats", self.repeats_spin), ("Threads", self.threads_spin)):
            label = QtWidgets.QLabel(caption)
            label.setBuddy(widget)
            options.addWidget(label)
            options.addWidget(widget)
        options.addWidget(self.pause_check)
        options.addStretch(1)
        actions = QtWidgets.QHBoxLayout()      # a row of its own: fits a narrow window
        actions.addWidget(self.status_label, 1)
        actions.addWidget(self.run_button)
        actions.addWidget(self.cancel_button)

        # results
        self.reference_label = QtWidgets.QLabel()
        self.reference_label.setWordWrap(True)
        self.table = QtWidgets.QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        for col, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.itemSelectionChanged.connect(self._update_use_button)
        self.table.setContextMenuPolicy(QtCore.Qt.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self.plot_widget = pg.PlotWidget(background=BACKGROUND)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setTitle("Hash rate per implementation", color=FOREGROUND, size="10pt")
        self.plot.setLabel("left", "rate")
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setPen(pg.mkPen(FOREGROUND))
            self.plot.getAxis(name).setTextPen(pg.mkPen(FOREGROUND))
        self.plot.showGrid(y=True, alpha=0.15)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.legend = self.plot.addLegend(offset=(-8, 4), labelTextColor=FOREGROUND,
                                          brush=pg.mkBrush(30, 31, 34, 220))
        self.bars: list[pg.BarGraphItem] = []
        # an empty chart says what fills it, instead of showing bare 0..1 axes
        self.placeholder = pg.TextItem("Run the benchmark to compare the implementations",
                                       color="#8A8A8A", anchor=(0.5, 0.5))
        self.placeholder.setPos(0.5, 0.5)
        self.plot.addItem(self.placeholder, ignoreBounds=True)
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setStyle(showValues=False)

        split = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        left = QtWidgets.QWidget()
        left_layout = QtWidgets.QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        use_row = QtWidgets.QHBoxLayout()
        use_row.addWidget(self.use_button)
        use_row.addStretch(1)
        left_layout.addLayout(use_row)
        left_layout.addWidget(self.kernel_label)
        split.addWidget(left)
        split.addWidget(self.plot_widget)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(options)
        layout.addLayout(actions)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.reference_label)
        layout.addWidget(split, 1)
        self._fit_table()
        self.refresh_kernel()

    # ------------------------------------------------------------------ public API
    def is_running(self) -> bool:
        """True from run() until its result or error has been handled on the GUI thread."""
        return self._thread is not None

    def result(self) -> dict[str, Any] | None:
        """The last finished run's object (None before the first)."""
        return self._result

    def run(self) -> bool:
        """Start a run on a background thread; False (with a message) while one runs."""
        if self.is_running():
            self.status_label.setText("A benchmark is already running; wait for it or cancel it.")
            return False
        device = self.device_combo.currentData()
        self._run_device = str(device)
        seconds = float(self.seconds_spin.value())
        repeats = int(self.repeats_spin.value())
        threads = int(self.threads_spin.value())
        counts = [threads] if threads else self._thread_counts
        impls = self._impls
        self._cancel.clear()
        self._partial = []
        self._set_running(True)
        # (the window pauses mining now, before the first measurement, when asked to)
        self.run_started.emit(self._run_device)
        from sgm.api import benchmark_plan

        try:
            steps, estimate = benchmark_plan(device, seconds, repeats, impls, counts)
        except Exception:  # noqa: BLE001 - only the progress bar goes without
            steps, estimate = None, None
        self._steps_done, self._estimate_s = 0, estimate
        self.progress_bar.setRange(0, steps or 0)     # 0..0: a busy bar
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        shared = (" Mining is running: it shares the processor, so the figures are lower "
                  "than alone." if self.mining_now() and not self.pause_check.isChecked()
                  else " Mining is paused until it ends." if self.mining_now() else "")
        self.status_label.setText(f"Running the {self.device_combo.currentText()} benchmark"
                                  + (f", about {estimate:.0f} s" if estimate else "")
                                  + f" …{shared}")
        emitter, cancel = self._emitter, self._cancel

        def progress(line: str) -> None:      # worker thread: signals only
            if cancel.is_set():
                raise BenchCancelled()
            emitter.progress.emit(line.strip())

        def work() -> None:                   # worker thread: no widget access
            try:
                result = run_measurement(device, seconds, repeats, impls, counts, progress,
                                         emitter.measured.emit)
                if cancel.is_set():
                    raise BenchCancelled()
            except BenchCancelled:
                emitter.failed.emit("Benchmark cancelled.")
            except Exception as exc:  # noqa: BLE001 - shown to the user, not raised
                log.exception("benchmark failed")
                emitter.failed.emit(f"Benchmark failed: {exc}")
            else:
                emitter.done.emit(result)

        self._thread = threading.Thread(target=work, name="gui-bench", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop after the current measurement (a measurement cannot be interrupted)."""
        if self.is_running():
            self._cancel.set()
            self.status_label.setText("Cancelling after the current measurement ...")

    def wait(self, timeout: float | None = None) -> bool:
        """Join the worker thread (window shutdown); True when none is left running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def show_result(self, result: dict[str, Any]) -> None:
        """Fill the table and the bar chart from an ``sgm bench --json`` object."""
        runs = list(result.get("runs", []))
        ref = result.get("reference", {}).get("bytes_per_s")
        if ref:
            self.reference_label.setText(
                f"Reference: {result['reference'].get('what', 'hashlib')}: {ref / 1e9:.3f} GB/s "
                f"(= {ref / 128 / 1e6:.2f} M nonces/s at 128 bytes a nonce)")
        selected = self.selected_run()
        keep = (selected.get("device"), selected.get("impl"), selected.get("threads")) \
            if selected else None
        self._shown = runs
        self.table.setRowCount(len(runs))
        for row, r in enumerate(runs):
            # an OpenCL run's "threads" are the device's compute units, not the Threads option
            threads = (f"{r.get('threads', '')} CUs" if r.get("device") == "opencl"
                       else str(r.get("threads", "")))
            ratio = float(r.get("ratio", 0.0))
            cells = (str(r.get("device", "")), self._run_label(r), threads,
                     f"{r.get('hashes_per_s', 0.0) / 1e6:.2f}",
                     f"{ratio:.3f}" if ratio > 0 else "…", "")
            for col, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if 2 <= col < COL_DEFAULT:
                    item.setTextAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
                if col == 4 and ratio <= 0:
                    item.setToolTip("Known when the run ends (it needs the run's hashlib "
                                    "reference)")
                self.table.setItem(row, col, item)
            if keep == (r.get("device"), r.get("impl"), r.get("threads")):
                self.table.selectRow(row)
        self._mark_kernel_rows()
        self._draw_bars(runs)

    def selected_run(self) -> dict[str, Any] | None:
        """The run of the selected row (None: no row selected)."""
        rows = {i.row() for i in self.table.selectedIndexes()}
        row = min(rows) if rows else -1
        return self._shown[row] if 0 <= row < len(self._shown) else None

    def refresh_kernel(self) -> None:
        """Read the CPU default kernel again (and what mining uses) and mark its rows."""
        from sgm.api import kernel_choice

        try:
            self._choice = kernel_choice()
        except Exception as exc:  # noqa: BLE001 - the tab works without the mark
            log.warning("cannot read the CPU kernel choice: %s", exc)
            self._choice = None
        self._mark_kernel_rows()

    def kernel_marks(self) -> dict[int, str]:
        """Row -> the text of its "CPU default" cell, for the rows that have one."""
        return {row: self.table.item(row, COL_DEFAULT).text()
                for row in range(self.table.rowCount())
                if self.table.item(row, COL_DEFAULT) is not None
                and self.table.item(row, COL_DEFAULT).text()}

    def use_selected_kernel(self) -> bool:
        """Keep the selected CPU row's kernel as the default (from the next start of
        mining); True when it was kept.  The figures it was chosen from are kept with it:
        each kernel's one-thread rate (or its fewest threads') from the shown CPU runs."""
        run = self.selected_run()
        if run is None or run.get("device") != "cpu":
            self.kernel_label.setText("Select a CPU row first: the default kernel is a CPU "
                                      "kernel.")
            return False
        from sgm.api import save_kernel_choice

        impl = str(run.get("impl"))
        rates: dict[str, float] = {}
        for r in sorted((r for r in self._shown if r.get("device") == "cpu"),
                        key=lambda r: -int(r.get("threads", 0))):
            rates[str(r.get("impl"))] = float(r.get("hashes_per_s", 0.0))
        try:
            choice = save_kernel_choice(impl, rates)
        except (OSError, ValueError) as exc:
            self.kernel_label.setText(f"{impl} could not be kept as the default: {exc}")
            return False
        self._choice = choice
        self._mark_kernel_rows()
        self.kernel_chosen.emit(impl, choice.reason)
        return True

    # ------------------------------------------------------------------ the kernel in use
    def _mark_kernel_rows(self) -> None:
        """The "CPU default" cells: which row's kernel mines now and which is the default,
        with a line under the table saying so (and what wins over the default)."""
        choice = self._choice
        default = choice.impl if choice is not None else None
        try:
            mining = self.mining_kernel()
        except Exception:  # noqa: BLE001 - a window glitch must not break the tab
            mining = None
        for row, r in enumerate(self._shown):
            item = self.table.item(row, COL_DEFAULT)
            if item is None:
                continue
            impl = r.get("impl") if r.get("device") == "cpu" else None
            text = ""
            if impl is not None and impl == mining:
                text = "in use" if impl == default or default is None else "in use now"
            elif impl is not None and impl == default:
                text = "default (next start)" if mining else "default"
            item.setText(text)
            for col in range(self.table.columnCount()):
                cell = self.table.item(row, col)
                if cell is not None:
                    font = cell.font()
                    font.setBold(bool(text))
                    cell.setFont(font)
        if choice is None:
            self.kernel_label.setText("")
        else:
            words = [f"CPU default kernel: {choice.reason}."]
            if choice.pinned:
                words.append("SGM_IMPL is set: it wins over the kept choice.")
            if self.configured_kernel:
                words.append(f"The settings name {self.configured_kernel} (--impl): it wins "
                             "over the default.")
            if mining and default and mining != default and not choice.pinned:
                words.append(f"Mining uses {mining} until its next start.")
            self.kernel_label.setText(" ".join(words))
        self._fit_table()          # the marks are bold: the columns widen
        self._update_use_button()

    def _update_use_button(self) -> None:
        run = self.selected_run()
        default = self._choice.impl if self._choice is not None else None
        self.use_button.setEnabled(run is not None and run.get("device") == "cpu"
                                   and run.get("impl") != default)

    def _table_menu(self, pos: QtCore.QPoint) -> None:
        row = self.table.rowAt(pos.y())
        if row < 0:
            return
        self.table.selectRow(row)
        run = self.selected_run()
        menu = QtWidgets.QMenu(self)
        act = menu.addAction(f"Use {run.get('impl') if run else ''} as the CPU default kernel")
        act.setEnabled(self.use_button.isEnabled())
        act.triggered.connect(self.use_selected_kernel)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _run_label(run: dict[str, Any]) -> str:
        if run.get("device") == "opencl" and run.get("name"):
            return f"{run['name']} ({run.get('impl', '')})"
        return str(run.get("impl", ""))

    def _fit_table(self) -> None:
        """Give the table the width of its columns, so no figure hides behind a scrollbar."""
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        width = (header.length() + 2 * self.table.frameWidth()
                 + self.table.verticalScrollBar().sizeHint().width() + 4)
        self.table.setMinimumWidth(width)

    def _draw_bars(self, runs: list[dict[str, Any]]) -> None:
        """Grouped bars: one group per implementation (an OpenCL device is one), one bar
        per CPU thread count; OpenCL runs are a series of their own, never a "thread
        count" (their threads are the device's compute units)."""
        for item in self.bars:
            self.plot.removeItem(item)
        self.bars = []
        self.legend.clear()
        categories = list(dict.fromkeys(self._run_label(r) for r in runs))
        self.placeholder.setVisible(not runs)
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setStyle(showValues=bool(runs))
        # no unit on an empty axis: pyqtgraph scales it (MH/s) once there are bars, and a
        # bare "H/s" beside the table's MH/s read as a second unit
        self.plot.setLabel("left", "rate", units="H/s" if runs else None)
        if not runs:
            return

        def series_of(r: dict[str, Any]) -> tuple[str, Any]:
            return ("opencl", None) if r.get("device") == "opencl" else ("cpu", r.get("threads"))

        series = list(dict.fromkeys(series_of(r) for r in runs))
        # each group's bars share its 0.8 slot: a group with one bar gets all of it
        in_group = {c: [k for k in series if any(series_of(r) == k and self._run_label(r) == c
                                                 for r in runs)] for c in categories}
        for j, key in enumerate(series):
            xs, hs, ws = [], [], []
            for r in runs:
                if series_of(r) != key:
                    continue
                group = self._run_label(r)
                members = in_group[group]
                width = 0.8 / len(members)
                xs.append(categories.index(group) - 0.4 + width * (members.index(key) + 0.5))
                hs.append(float(r.get("hashes_per_s", 0.0)))
                ws.append(width * 0.9)
            colour = DEVICE_COLOURS[j % len(DEVICE_COLOURS)]
            bar = pg.BarGraphItem(x=xs, height=hs, width=ws,
                                  brush=pg.mkBrush(colour), pen=pg.mkPen(colour))
            threads = key[1]
            name = ("OpenCL (all compute units)" if key[0] == "opencl"
                    else f"{threads} thread{'s' if threads != 1 else ''}")
            self.plot.addItem(bar)
            self.legend.addItem(bar, name)
            self.bars.append(bar)
        # the axis names an OpenCL group by its device alone (the table has the kernel):
        # a long label would overlap its neighbours and pyqtgraph would drop it
        short = {self._run_label(r): (str(r.get("name") or r.get("impl", ""))
                                      if r.get("device") == "opencl" else self._run_label(r))
                 for r in runs}
        self.plot.getAxis("bottom").setTicks([[(i, short[c]) for i, c in enumerate(categories)]])
        self.plot.setXRange(-0.6, len(categories) - 0.4, padding=0)
        self.plot.enableAutoRange(axis=pg.ViewBox.YAxis)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for w in (self.device_combo, self.seconds_spin, self.repeats_spin, self.threads_spin,
                  self.pause_check):
            w.setEnabled(not running)
        if not running:
            self.threads_spin.setEnabled(self.device_combo.currentData() == "cpu")

    def _finish(self) -> None:
        self._thread = None        # it has emitted its last signal and ends on its own
        self._set_running(False)
        self.progress_bar.setVisible(False)
        self.run_ended.emit()

    def _combined(self, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows shown: CPU runs, then OpenCL runs; ``current`` stands in for the running
        device kind's."""
        return [r for kind in ("cpu", "opencl")
                for r in (current if kind == self._run_device
                          else self._by_device.get(kind, {}).get("runs", []))]

    @QtCore.Slot(object)
    def _on_measured(self, run: dict[str, Any]) -> None:
        """A figure was measured: its row appears now, not at the end of the run."""
        if not self.is_running():
            return
        self._partial.append(run)
        previous = self._by_device.get(self._run_device, {})
        self.show_result({"reference": previous.get("reference", {}),
                          "runs": self._combined(self._partial)})
        self.measured.emit(run)

    def time_left(self) -> float | None:
        """Seconds the running benchmark still needs, estimated (None: unknown)."""
        steps = self.progress_bar.maximum()
        if not self._estimate_s or not steps:
            return None
        return max(0.0, self._estimate_s * (1.0 - self._steps_done / steps))

    @QtCore.Slot(str)
    def _on_progress(self, line: str) -> None:
        self._steps_done += 1
        if self.progress_bar.maximum():
            self.progress_bar.setValue(min(self._steps_done, self.progress_bar.maximum()))
        left = self.time_left()
        self.status_label.setText(f"Running … {line}"
                                  + (f" — about {left:.0f} s left" if left is not None else ""))

    @QtCore.Slot(object)
    def _on_done(self, result: dict[str, Any]) -> None:
        self._finish()
        self._result = result
        self._by_device[self._run_device] = result
        self.show_result({"reference": result.get("reference", {}),
                          "runs": self._combined(result.get("runs", []))})
        n = len(result.get("runs", []))
        self.status_label.setText(
            f"Done: {n} measurement{'s' if n != 1 else ''}."
            + (" To mine with another CPU kernel, select its row and choose Use this kernel."
               if self._run_device == "cpu" else ""))
        self.finished.emit(result)

    @QtCore.Slot(str)
    def _on_failed(self, message: str) -> None:
        self._finish()
        self.status_label.setText(message)
        self.failed.emit(message)
