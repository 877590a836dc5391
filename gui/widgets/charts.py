"""Live charts: hash rate per device and in total, shares over time, found share difficulty.

Why it is built this way (pyqtgraph's costs are per update, not per point):
- every series lives in a :class:`RingBuffer` of fixed size, so a day of mining holds no more
  than the last window's samples and appending allocates nothing;
- samples are only stored by ``add_*``; ``refresh()`` (the window's timer, about 1 Hz) hands
  each curve that got samples its window with one ``setData`` -- curves are never cleared
  and re-created;
- the X range is set explicitly each refresh with auto-range off, because pyqtgraph's
  ``clipToView`` does nothing while X auto-ranges; Y is fitted to the visible samples (from 0
  for rates and counts) by the same code, cheaper than auto-range's walk over every item;
- ``clipToView`` + peak downsampling keep a full window cheap to draw and keep dips visible;
- share counts are kept per second and a flood of easy shares keeps a few difficulty points
  a second (always that second's best), so a flood costs no more than a quiet pool.
"""
from __future__ import annotations

import html
import logging
import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets  # before pyqtgraph: binds it to PySide6

log = logging.getLogger("sgm.gui.charts")

#: Colour-blind-safe colours (Okabe & Ito) that read well on the dark plot background.
DEVICE_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#CC79A7", "#D55E00",
                  "#0072B2", "#999999")
TOTAL_COLOUR = "#FFFFFF"
OUTCOME_COLOURS = {"accepted": "#3CB44B", "rejected": "#FF4B4B", "stale": "#FFB000"}
OUTCOMES = tuple(OUTCOME_COLOURS)
TARGET_COLOUR = "#FF6EC7"
BACKGROUND = "#1E1F22"
FOREGROUND = "#D8D8D8"
#: Most hash-rate samples kept per second of the window (faster callers are coalesced).
RATE_SAMPLES_PER_S = 10
#: Found-share difficulties kept per outcome: every share is drawn up to MAX_SHARE_POINTS /
#: window a second (10 a second over 10 minutes); past that (a flood of easy shares) each
#: second keeps that many points, always including its best, and the title says "sampled".
MAX_SHARE_POINTS = 6000
#: Shortest time span shown while the window is not yet full (seconds).
MIN_VIEW_S = 60.0


class RingBuffer:
    """A fixed-capacity ring of (t, y) float64 samples.

    The storage is twice the capacity and every sample is written twice (at ``i`` and
    ``i + capacity``), so the last ``len`` samples are always one contiguous slice: ``view()``
    returns views without copying and ``append()`` allocates nothing.
    """

    __slots__ = ("capacity", "_t", "_y", "_pos", "_len")

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"RingBuffer capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self._t = np.zeros(2 * capacity, dtype=np.float64)
        self._y = np.zeros(2 * capacity, dtype=np.float64)
        self._pos = 0      # where the next sample goes, 0..capacity-1
        self._len = 0

    def __len__(self) -> int:
        return self._len

    @property
    def nbytes(self) -> int:
        """Bytes of sample storage (constant for the buffer's life)."""
        return self._t.nbytes + self._y.nbytes

    def append(self, t: float, y: float) -> None:
        p = self._pos
        self._t[p] = self._t[p + self.capacity] = t
        self._y[p] = self._y[p + self.capacity] = y
        self._pos = p + 1 if p + 1 < self.capacity else 0
        if self._len < self.capacity:
            self._len += 1

    def set_last(self, y: float, t: float | None = None) -> None:
        """Replace the newest sample's y (and t if given): several updates, one point."""
        if not self._len:
            raise IndexError("set_last on an empty RingBuffer")
        p = self._pos - 1 if self._pos else self.capacity - 1
        self._y[p] = self._y[p + self.capacity] = y
        if t is not None:
            self._t[p] = self._t[p + self.capacity] = t

    def last(self) -> tuple[float, float] | None:
        """The newest (t, y), or None when empty."""
        if not self._len:
            return None
        p = self._pos - 1 if self._pos else self.capacity - 1
        return float(self._t[p]), float(self._y[p])

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, y) of the stored samples, oldest first: views into the storage, valid until
        the next append."""
        start = self._pos + self.capacity - self._len
        return self._t[start:start + self._len], self._y[start:start + self._len]

    def clear(self) -> None:
        self._pos = self._len = 0


def _since(buf: RingBuffer, t0: float) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the samples at or after t0 plus the one before it (so a line enters the
    window from its left edge); copies, because the item keeps them while the ring moves."""
    t, y = buf.view()
    i = max(0, int(np.searchsorted(t, t0, side="left")) - 1)
    return t[i:].copy(), y[i:].copy()


class _LogAxis(pg.AxisItem):
    """A log axis that labels whole decades only (thinned to fit), the 2..9 multiples as
    unlabelled ticks; with less than a decade in view, 1-2-5 steps are labelled instead.
    pyqtgraph's own log ticks label every multiple on a short axis, and the labels collide."""

    LABEL_PX = 18   # room one label needs along a vertical axis

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802,N803 (Qt naming)
        if not (math.isfinite(minVal) and math.isfinite(maxVal)) or maxVal <= minVal:
            return []
        lo, hi = math.floor(minVal), math.ceil(maxVal)
        decades = [float(v) for v in range(lo, hi + 1) if minVal <= v <= maxVal]
        minor = [v + math.log10(m) for v in range(lo, hi) for m in range(2, 10)
                 if minVal <= v + math.log10(m) <= maxVal]
        if len(decades) >= 2:
            step = max(1, math.ceil(len(decades) * self.LABEL_PX / max(size, 1.0)))
            return [(float(step), decades[::step]), (None, minor if step == 1 else decades)]
        labelled = [v + math.log10(m) for v in range(lo, hi + 1) for m in (1, 2, 5)
                    if minVal <= v + math.log10(m) <= maxVal]
        return [(None, labelled), (None, minor)]


class _Series:
    """One curve and its ring."""

    __slots__ = ("buf", "item", "drawn", "dirty", "bin_second", "bin_kept")

    def __init__(self, buf: RingBuffer, item: pg.PlotDataItem) -> None:
        self.buf = buf
        self.item = item
        self.drawn = 0        # real samples inside the window at the last refresh
        self.dirty = True     # samples arrived since the item last got its data
        self.bin_second = math.nan   # difficulty points: the second being filled ...
        self.bin_kept = 0            # ... and how many points it kept


class ChartsPanel(QtWidgets.QWidget):
    """Three stacked plots sharing one time axis (see the module docstring)."""

    def __init__(self, window_s: float = 600.0, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        if not window_s > 0 or not math.isfinite(window_s):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s}")
        self.window_s = float(window_s)
        self._rate_capacity = max(16, int(self.window_s * RATE_SAMPLES_PER_S) + 1)
        self._diff_per_second = max(1, int(MAX_SHARE_POINTS // self.window_s))
        diff_capacity = max(MAX_SHARE_POINTS, int(self._diff_per_second * (self.window_s + 2)))
        self._min_rate_spacing = self.window_s / (self._rate_capacity - 1)
        self._pool_difficulty: float | None = None
        self._share_totals = dict.fromkeys(OUTCOMES, 0)
        self._shares_since: float | None = None   # first share seen: the count curves start here
        self._exact_totals = False   # set_share_totals() was called: it, not add_share, counts
        self._first_t: float | None = None       # the first sample: the time axis starts here
        #: found shares not drawn as their own point (a second over _diff_per_second)
        self.shares_thinned = 0
        self._titles: dict[int, str] = {}

        self._view = pg.GraphicsLayoutWidget()
        self._view.setBackground(BACKGROUND)
        self._view.ci.setSpacing(4)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)

        self.rate_plot = self._add_plot(0, "H/s")
        self.share_plot = self._add_plot(1, "")
        self.diff_plot = self._add_plot(2, "", left=_LogAxis("left"))
        self.diff_plot.setLogMode(x=False, y=True)
        for plot in (self.share_plot, self.diff_plot):
            plot.setXLink(self.rate_plot)
        for plot in (self.rate_plot, self.share_plot):
            # one time scale under the stack: the linked plots above keep the ticks only
            plot.getAxis("bottom").setStyle(showValues=False)

        self._total = _Series(RingBuffer(self._rate_capacity),
                              self.rate_plot.plot(name="total", pen=pg.mkPen(TOTAL_COLOUR, width=2)))
        self._total.item.setZValue(10)     # the total stays visible over a single device's line
        self._devices: dict[str, _Series] = {}

        self._shares: dict[str, _Series] = {}
        self._diffs: dict[str, _Series] = {}
        share_capacity = int(self.window_s) + 2          # one point per second at most
        for outcome, colour in OUTCOME_COLOURS.items():
            self._shares[outcome] = _Series(
                RingBuffer(share_capacity),
                self.share_plot.plot(name=outcome, pen=pg.mkPen(colour, width=1)))
            self._diffs[outcome] = _Series(
                RingBuffer(diff_capacity),
                self.diff_plot.plot(name=outcome, pen=None, symbol="o", symbolSize=5,
                                    symbolPen=None, symbolBrush=pg.mkBrush(colour)))
        self._target_line = pg.InfiniteLine(
            angle=0, movable=False, pen=pg.mkPen(TARGET_COLOUR, width=1.5, style=QtCore.Qt.DashLine))
        self._target_line.setVisible(False)
        self.diff_plot.addItem(self._target_line)
        self.diff_plot.getAxis("left").setStyle(maxTextLevel=0)   # see _LogAxis
        self._placeholders = {
            id(plot): self._add_placeholder(plot, text) for plot, text in (
                (self.rate_plot, "waiting for the first hash rate sample"),
                (self.share_plot, "no share answered yet"),
                (self.diff_plot, "no share found yet"))}
        self._counts_html = ""
        self.count_label = pg.TextItem(anchor=(0, 0))   # top-left of the share plot
        self.share_plot.addItem(self.count_label, ignoreBounds=True)
        self._update_titles()
        self.refresh()

    # ------------------------------------------------------------------ setup
    def _add_plot(self, row: int, units: str,
                  left: pg.AxisItem | None = None) -> pg.PlotItem:
        axes = {"bottom": pg.DateAxisItem()}
        if left is not None:
            axes["left"] = left
        plot = self._view.addPlot(row=row, col=0, axisItems=axes)
        plot.setLabel("left", "rate" if units else "", units=units)
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(FOREGROUND))
            axis.setTextPen(pg.mkPen(FOREGROUND))
        plot.getAxis("left").setWidth(64)      # aligned plots: same axis width on all three
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        # both ranges are set by refresh(): X is the window (clipToView needs X auto-range
        # off), Y fits the visible data from 0 (rates, counts) -- cheaper than auto-range's
        # walk over every item, and a dip is not magnified into a cliff
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getViewBox().disableAutoRange()
        return plot

    @staticmethod
    def _add_placeholder(plot: pg.PlotItem, text: str) -> pg.TextItem:
        """A grey note in the middle of an empty plot, so empty reads as "nothing yet"."""
        item = pg.TextItem(text, color="#8A8A8A", anchor=(0.5, 0.5))
        plot.addItem(item, ignoreBounds=True)
        return item

    def _show_placeholder(self, plot: pg.PlotItem, empty: bool, x: float, y: float) -> None:
        item = self._placeholders[id(plot)]
        item.setVisible(empty)
        if empty:
            item.setPos(x, y)

    def _device_series(self, name: str) -> _Series:
        """The curve of device ``name``, created (with its own colour) on first sight."""
        series = self._devices.get(name)
        if series is None:
            colour = DEVICE_COLOURS[len(self._devices) % len(DEVICE_COLOURS)]
            item = self.rate_plot.plot(name=name, pen=pg.mkPen(colour, width=1))
            series = self._devices[name] = _Series(RingBuffer(self._rate_capacity), item)
            self._update_titles()
        return series

    # ------------------------------------------------------------------ data in
    def add_rates(self, t: float, total: float, per_device: dict[str, float]) -> None:
        """One hash-rate sample (H/s) at epoch time ``t``.

        A device seen before but missing from ``per_device`` is stopped: it gets NaN, which
        leaves a gap in its line.  Calls closer than window/capacity apart replace the previous
        sample, so the ring always spans the whole window.  A clock going backwards is held at
        the last time (the X data must increase for clipping).
        """
        last = self._total.buf.last()
        if self._first_t is None:
            self._first_t = float(t)
        coalesce = last is not None and t - last[0] < self._min_rate_spacing
        if last is not None and t < last[0]:
            t = last[0]
        for name in per_device:
            self._device_series(name)
        for name, series in [("", self._total)] + list(self._devices.items()):
            y = float(total) if not name else float(per_device.get(name, math.nan))
            if coalesce and len(series.buf):
                series.buf.set_last(y)
            else:
                series.buf.append(t, y)
            series.dirty = True

    def add_share(self, t: float, outcome: str, difficulty: float) -> None:
        """A share answered by the pool: ``outcome`` is "accepted", "rejected" or "stale"."""
        counts = self._shares.get(outcome)
        if counts is None:
            log.warning("charts: unknown share outcome %r ignored", outcome)
            return
        if self._first_t is None:
            self._first_t = float(t)
        second = float(math.floor(t))
        if not self._exact_totals:
            self._count(outcome, second, self._share_totals[outcome] + 1)
        if difficulty > 0 and math.isfinite(difficulty):   # a log axis cannot show 0
            self._add_difficulty(self._diffs[outcome], t, second, float(difficulty))

    def set_share_totals(self, t: float, totals: dict[str, int]) -> None:
        """The engine's own share counts at epoch time ``t`` ({"accepted": n, "rejected": n,
        "stale": n}).  Once called, the cumulative curves follow these totals only, so a
        flood whose share samples were thinned still shows the exact counts."""
        self._exact_totals = True
        second = float(math.floor(t))
        if self._shares_since is None and any(totals.values()):
            # counted before the first snapshot: the curves rise from 0 at the session's start
            start = second if self._first_t is None else min(second, math.floor(self._first_t))
            self._shares_since = float(start)
            for outcome in OUTCOMES:
                if totals.get(outcome) and start < second:
                    self._shares[outcome].buf.append(float(start), 0.0)
        for outcome in OUTCOMES:
            total = int(totals.get(outcome, 0))
            if total != self._share_totals[outcome] or (total and self._shares_since is None):
                self._count(outcome, second, total)

    def _count(self, outcome: str, second: float, total: int) -> None:
        """Record ``outcome``'s cumulative count ``total`` at ``second``."""
        if self._shares_since is None:
            self._shares_since = second
        self._share_totals[outcome] = total
        counts = self._shares[outcome]
        if self._exact_totals and not len(counts.buf) and second > self._shares_since:
            # an outcome first seen later (the first stale share) lies at 0 until then
            counts.buf.append(self._shares_since, 0.0)
            if second - 1 > self._shares_since:
                counts.buf.append(second - 1, 0.0)
        last = counts.buf.last()
        if last is not None and second <= last[0]:
            counts.buf.set_last(total)
        else:
            counts.buf.append(second, total)
        counts.dirty = True

    def _add_difficulty(self, series: _Series, t: float, second: float, difficulty: float) -> None:
        """Keep up to _diff_per_second points a second; past that, a share harder than the
        second's last kept point replaces it, so each second's best share is always drawn."""
        if second != series.bin_second:
            series.bin_second, series.bin_kept = second, 0
        last = series.buf.last()
        if last is not None and t < last[0]:
            t = last[0]            # out of order: X must increase for clipping
        if series.bin_kept < self._diff_per_second:
            series.buf.append(t, difficulty)
            series.bin_kept += 1
            series.dirty = True
        else:
            self.shares_thinned += 1
            if last is not None and difficulty > last[1]:
                series.buf.set_last(difficulty, t)
                series.dirty = True

    def set_pool_difficulty(self, difficulty: float | None) -> None:
        """Draw the pool's share target as a horizontal line (None hides it)."""
        if difficulty is None or not difficulty > 0 or not math.isfinite(difficulty):
            self._pool_difficulty = None
            self._target_line.setVisible(False)
            self._update_titles()
            return
        self._pool_difficulty = float(difficulty)
        # InfiniteLine does not follow the plot's log mode: place it at log10 of the value
        self._target_line.setPos(math.log10(difficulty))
        self._target_line.setVisible(True)
        self._update_titles()

    def clear(self) -> None:
        """Forget every sample (a new mining session); device curves stay, emptied."""
        for series in self._all_series():
            series.buf.clear()
            series.dirty = True
            series.bin_second, series.bin_kept = math.nan, 0
        self._share_totals = dict.fromkeys(OUTCOMES, 0)
        self._shares_since = None
        self._first_t = None
        self.shares_thinned = 0
        self.refresh()

    # ------------------------------------------------------------------ drawing
    def _all_series(self) -> list[_Series]:
        return [self._total, *self._devices.values(), *self._shares.values(),
                *self._diffs.values()]

    def refresh(self, now: float | None = None) -> None:
        """Hand each curve with new samples its last window, move the time axis to ``now``
        and fit the Y ranges to what is visible."""
        now = time.time() if now is None else float(now)
        t0 = now - self.window_s
        # the axis spans the window once it is full; before, the time since the first sample
        # (at least MIN_VIEW_S), so the first minutes fill the plot instead of a thin strip
        view_t0 = t0 if self._first_t is None else max(t0, min(self._first_t, now - MIN_VIEW_S))
        rate_max = self._draw([self._total, *self._devices.values()], t0)
        diff_lo, diff_hi = math.inf, -math.inf
        for series in self._diffs.values():
            t, y = series.buf.view()
            visible = y[np.searchsorted(t, t0):]
            series.drawn = int(visible.size)
            if visible.size:
                diff_lo, diff_hi = min(diff_lo, visible.min()), max(diff_hi, visible.max())
            if series.dirty:
                series.dirty = False
                t, y = _since(series.buf, t0)
                series.item.setData(t, y)
        count_max = 0.0
        for outcome, series in self._shares.items():
            t, y = _since(series.buf, t0)
            series.drawn = int(np.count_nonzero(t >= t0))
            if self._shares_since is not None:
                # the count holds until now; a curve with no share yet lies at 0 from the start
                total = float(self._share_totals[outcome])
                count_max = max(count_max, total)
                if not len(t):
                    t, y = np.array([self._shares_since]), np.array([0.0])
                t, y = np.append(t, max(now, t[-1])), np.append(y, total)
            series.item.setData(t, y)     # always: its last point follows now
            series.dirty = False
        self._update_titles()
        self.rate_plot.setXRange(view_t0, now, padding=0)   # the other two are linked to it
        rate_top = rate_max * 1.12 if rate_max > 0 else 1.0
        self.rate_plot.setYRange(0.0, rate_top, padding=0)
        count_top = max(5.0, count_max) * 1.12       # whole-number ticks while counts are small
        self.share_plot.setYRange(0.0, count_top, padding=0)
        self.count_label.setPos(view_t0, count_top)
        self.count_label.setVisible(self._shares_since is not None)
        mid = (view_t0 + now) / 2
        self._show_placeholder(self.rate_plot, self._total.drawn == 0, mid, rate_top / 2)
        self._show_placeholder(self.share_plot, self._shares_since is None, mid, count_top / 2)
        if self._pool_difficulty is not None:
            diff_lo = min(diff_lo, self._pool_difficulty)
            diff_hi = max(diff_hi, self._pool_difficulty)
        if diff_hi > 0:
            lo, hi = math.log10(diff_lo), math.log10(diff_hi)
            self.diff_plot.setYRange(lo - 0.25, hi + 0.25, padding=0)
        y_lo, y_hi = self.diff_plot.getViewBox().viewRange()[1]
        self._show_placeholder(self.diff_plot, not any(s.drawn for s in self._diffs.values()),
                               mid, (y_lo + y_hi) / 2)

    def _draw(self, group: list[_Series], t0: float) -> float:
        """setData on the group's curves that got samples; returns the visible maximum."""
        top = 0.0
        for series in group:
            t, y = _since(series.buf, t0)
            inside = y[t >= t0]
            finite = inside[np.isfinite(inside)]
            series.drawn = int(finite.size)
            if finite.size:
                top = max(top, float(finite.max()))
            if series.dirty:
                series.dirty = False
                series.item.setData(t, y, connect="finite")
        return top

    def _update_titles(self) -> None:
        """Each plot's title doubles as its legend (coloured names), so nothing covers data."""
        def key(colour: str, text: str, mark: str = "\u25ac") -> str:
            return f'<span style="color:{colour}">{mark}&nbsp;{text}</span>'

        sep = "&nbsp;&nbsp;&nbsp;"
        rates = [key(TOTAL_COLOUR, "total")]
        rates += [key(s.item.opts["pen"].color().name(), html.escape(name))
                  for name, s in self._devices.items()]
        self._set_title(self.rate_plot, "Hash rate" + sep + sep.join(rates))
        shares = [key(OUTCOME_COLOURS[o], o) for o in OUTCOMES]
        self._set_title(self.share_plot, "Shares (cumulative)" + sep + sep.join(shares))
        # the counts change with every share: they live in a text item inside the plot, as a
        # title they would re-lay the whole stack out at each refresh (tens of ms)
        counts = sep.join(key(OUTCOME_COLOURS[o], f"{o}&nbsp;{self._share_totals[o]:,}", "")
                          for o in OUTCOMES)
        if counts != self._counts_html:
            self._counts_html = counts
            self.count_label.setHtml(counts)
        diffs = [key(OUTCOME_COLOURS[o], o, "\u25cf") for o in OUTCOMES]
        if self._pool_difficulty is not None:
            diffs.append(key(TARGET_COLOUR, f"pool {self._pool_difficulty:.6g}", "- -"))
        drawn = (f"sampled: at most {self._diff_per_second} a second, each second's best"
                 if self.shares_thinned else "every share")
        self._set_title(self.diff_plot, f"Found share difficulty (log, {drawn})" + sep
                        + sep.join(diffs))

    def _set_title(self, plot: pg.PlotItem, text: str) -> None:
        """setTitle re-lays the plot out: only when the text changed."""
        if self._titles.get(id(plot)) != text:
            self._titles[id(plot)] = text
            plot.setTitle(text, color=FOREGROUND, size="10pt")

    # ------------------------------------------------------------------ tests, status
    def point_counts(self) -> dict[str, int]:
        """Real samples inside the window per curve as of the last refresh().

        Keys: "total", each device's name, "accepted" / "rejected" / "stale" (seconds with a
        share of that outcome), "difficulty" (found-share points of every outcome) and
        "difficulty:<outcome>".
        """
        counts = {"total": self._total.drawn}
        counts.update({name: s.drawn for name, s in self._devices.items()})
        counts.update({name: s.drawn for name, s in self._shares.items()})
        for name, s in self._diffs.items():
            counts[f"difficulty:{name}"] = s.drawn
        counts["difficulty"] = sum(s.drawn for s in self._diffs.values())
        return counts

    def device_names(self) -> list[str]:
        """Devices with a curve, in order of first sight."""
        return list(self._devices)

    def device_pen(self, name: str) -> QtGui.QPen:
        """The pen of device ``name``'s curve (distinct per device)."""
        return self._devices[name].item.opts["pen"]

    def share_totals(self) -> dict[str, int]:
        """Shares counted per outcome since the panel started (or clear())."""
        return dict(self._share_totals)

    @property
    def pool_difficulty(self) -> float | None:
        return self._pool_difficulty

    @property
    def target_line(self) -> pg.InfiniteLine:
        return self._target_line
