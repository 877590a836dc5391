"""Issue 14: what a new user hit, each over a real miner where mining is involved.

1. the first window fits the screen's available area;
2. a refused pool shows the reason and the retry countdown (header, status bar, Pools
   tooltip); Stop all reads "Stopped" and greys the rows, blanking their work figures;
3. a change that restarts mining asks first (Cancel keeps mining and the list); a backup
   pool added below the current one restarts nothing;
4. keyboard: the table is one Tab stop, Ctrl+Tab switches tabs from it, mnemonics are
   unique, Start all / Stop all have keys;
5. the config file: a bad value survives a toggle, a non-JSON file stays byte for byte
   unless the user agrees to replace it;
6. pool URLs: the engine's parser's words, the scheme added, errors cleared, no jumps;
8. Help > About says the version, licence and config path; the title shows the rate.
"""
from __future__ import annotations

import base64
import json
import re
import socket
import string
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QWidget

from sgm import _native
from sgm.api import LICENSE, MinerConfig, PoolConfig, __version__
from sgm.pool import PoolThread
from sgm_gui import main_window as mw
from sgm_gui.main_window import FRAME_ALLOWANCE, MainWindow, fit_size
from sgm_gui.models.device_table import (
    COL_ACCEPTED,
    COL_ENABLED,
    COL_HW,
    COL_KIND,
    COL_NAME,
    COL_RATE_1M,
    COL_UTIL,
    IDLE_COLOUR,
)
from sgm_gui.settings import GuiSettings, load_settings
from sgm_gui.widgets.pool_panel import COL_STATE, PoolPanel

from .conftest import embedded

#: the benchmark tab's tests measure one kernel
IMPL = _native.available_implementations()[0]


@pytest.fixture
def bare_window(qtbot, bridge):
    """bare_window(**kw) -> a MainWindow that never starts mining; its log pane leaves the
    engine's logger at teardown (the window is deleted without a close)."""
    made: list[MainWindow] = []

    def make(settings_path: Path | None = None) -> MainWindow:
        w = MainWindow(bridge, embedded(), GuiSettings(), settings_path=settings_path)
        qtbot.addWidget(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.timer.stop()
        w.log_pane.detach()


def refused_port() -> tuple[socket.socket, int]:
    """A bound socket that never listens: connecting to its port is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


# ------------------------------------------------------------------ 1. first window
@pytest.mark.parametrize("screen", [QRect(0, 0, 1366, 738), QRect(0, 0, 800, 570),
                                    QRect(0, 24, 1920, 1056)])
def test_the_first_window_fits_the_available_screen_area(screen):
    size = fit_size(screen)
    assert size.width() + FRAME_ALLOWANCE.width() <= screen.width()
    assert size.height() + FRAME_ALLOWANCE.height() <= screen.height()
    assert size.width() >= 720 and size.height() >= 480
    if screen.width() >= 1300:
        assert size.width() == 1200          # a large screen gets the full default width


def test_a_fresh_window_is_no_larger_than_its_screen(bare_window):
    w = bare_window()
    available = w.screen().availableGeometry()
    assert w.width() + FRAME_ALLOWANCE.width() <= max(available.width(), 720 + 16)
    assert w.height() + FRAME_ALLOWANCE.height() <= max(available.height(), 480 + 40)
    assert w.size() == fit_size(available)


# ------------------------------------------------------------------ 2. connection state
def test_a_refused_pool_shows_why_and_the_retry_countdown(qtbot, bridge, open_window):
    sock, port = refused_port()
    with sock:
        w = open_window(MinerConfig(threads=1, pools=[
            PoolConfig(f"stratum+tcp://127.0.0.1:{port}", "wallet.worker", "x")]))
        reason = f"Cannot connect to 127.0.0.1:{port}: connection refused"
        qtbot.waitUntil(lambda: "retrying in" in w.lbl_state.text(), timeout=30_000)
        assert w.lbl_state.text().startswith(reason + " — retrying in ")
        assert w.session_label.text() == "Not mining: " + w.lbl_state.text()
        assert "Mining" not in w.session_label.text().replace("Not mining", "")
        assert w.windowTitle() == "Not mining — sgm"
        tip = w.pool_panel.model.data(w.pool_panel.model.index(0, COL_STATE),
                                      Qt.ItemDataRole.ToolTipRole)
        assert reason in tip and "Errno" not in tip
        # the countdown counts: a later snapshot says fewer seconds or a new attempt
        first = w.lbl_state.text()
        qtbot.waitUntil(lambda: w.lbl_state.text() != first, timeout=30_000)
        w.log_pane.flush()                   # the Log tab: words, no errno, no logger names
        log_text = w.log_pane.text()
        assert "connection refused" in log_text
        assert "Errno" not in log_text and "sgm.stratum" not in log_text


def test_stop_all_reads_stopped_and_greys_the_devices(qtbot, bridge, open_window):
    w = open_window(embedded(threads=2, bits=16))
    qtbot.waitUntil(lambda: w.lbl_state.text() == "Mining", timeout=30_000)
    qtbot.waitUntil(lambda: w.model.rowCount() == 2 and
                    w.model.data(w.model.index(0, COL_RATE_1M)) != "", timeout=30_000)
    assert "H/s — sgm" in w.windowTitle()
    w.stop_all()
    qtbot.waitUntil(lambda: w.lbl_state.text() == "Stopped", timeout=30_000)
    assert w.session_label.text().startswith("Stopped")
    qtbot.waitUntil(lambda: w.model.data(w.model.index(1, COL_UTIL)) == "", timeout=10_000)
    for row in range(2):
        assert w.model.data(w.model.index(row, COL_RATE_1M)) == ""
        colour = w.model.data(w.model.index(row, COL_NAME), Qt.ItemDataRole.ForegroundRole)
        assert QColor(colour) == QColor(IDLE_COLOUR)
    assert w.windowTitle() == "Stopped — sgm"
    w.start_all()
    qtbot.waitUntil(lambda: w.lbl_state.text() == "Mining", timeout=30_000)


def since_start(w: MainWindow) -> int:
    """The seconds since mining was started, as the uptime's tooltip says them."""
    m = re.search(r"\((\d+):(\d\d):(\d\d) since mining was started\)", w.lbl_uptime.toolTip())
    return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) if m else -1


def test_the_uptime_stands_still_while_no_pool_answers(qtbot, bridge, open_window):
    """Up counts time mining: not while the pool refuses every connection (the engine's
    elapsed_s goes on, and the tooltip says how long since the start)."""
    sock, port = refused_port()
    with sock:
        w = open_window(MinerConfig(threads=1, pools=[
            PoolConfig(f"stratum+tcp://127.0.0.1:{port}", "wallet.worker", "x")]))
        qtbot.waitUntil(lambda: "retrying in" in w.lbl_state.text() and
                        float(bridge.last_snapshot["summary"]["elapsed_s"]) >= 3.0,
                        timeout=30_000)
        qtbot.waitUntil(lambda: since_start(w) >= 3, timeout=30_000)
        assert w.mined_s == 0.0
        assert w.counters()["uptime"] == "Up 0:00:00"
        assert "since mining was started" in w.lbl_uptime.toolTip()
        # the device has no work: greyed, its live figures blank, the tooltip says why
        qtbot.waitUntil(lambda: w.model.rowCount() == 1, timeout=30_000)
        for col in (COL_RATE_1M, COL_UTIL):
            assert w.model.data(w.model.index(0, col)) == ""
        colour = w.model.data(w.model.index(0, COL_NAME), Qt.ItemDataRole.ForegroundRole)
        assert QColor(colour) == QColor(IDLE_COLOUR)
        assert "Waiting for a pool" in w.model.data(w.model.index(0, COL_UTIL),
                                                    Qt.ItemDataRole.ToolTipRole)


def test_the_uptime_counts_while_mining_and_stops_with_stop_all(qtbot, bridge, open_window):
    w = open_window(embedded(threads=1, bits=16))
    qtbot.waitUntil(lambda: w.mined_s >= 2.0 and w.counters()["uptime"] != "Up 0:00:00",
                    timeout=30_000)
    w.stop_all()
    qtbot.waitUntil(lambda: w.lbl_state.text() == "Stopped", timeout=30_000)
    stopped_at = w.mined_s
    snapshots: list[float] = []
    bridge.snapshot.connect(lambda snap: snapshots.append(snap["summary"]["elapsed_s"]))
    qtbot.waitUntil(lambda: len(snapshots) >= 3, timeout=30_000)
    assert w.mined_s == stopped_at
    w.start_all()
    qtbot.waitUntil(lambda: w.mined_s > stopped_at, timeout=30_000)


# ------------------------------------------------------------------ 3. restarts
def test_a_change_that_restarts_mining_asks_and_cancel_keeps_mining(qtbot, bridge,
                                                                     open_window, monkeypatch):
    w = open_window(embedded(threads=1, bits=16))
    asked: list[str] = []
    monkeypatch.setattr(w, "confirm", lambda title, text, action: asked.append(text) or False)
    miner = bridge.made[-1]
    w.pool_panel.set_form("stratum+tcp://127.0.0.1:9", "wallet.rig")
    with qtbot.assertNotEmitted(bridge.stopped, wait=1000):
        w.pool_panel.add_button.click()
    assert len(asked) == 1 and "restarts" in asked[0] and "uptime" in asked[0]
    assert w.pool_panel.pools() == [] and w.config.pools == []     # the list is put back
    assert bridge.made[-1] is miner and miner.running


def test_the_threads_dialog_says_mining_restarts(qtbot, bridge, open_window, monkeypatch):
    w = open_window(embedded(threads=1, bits=16))
    seen: list[str] = []

    def get_int(parent, title, label, *args):
        seen.append(label)
        return 1, False                                  # the user cancels

    monkeypatch.setattr(mw.QInputDialog, "getInt", staticmethod(get_int))
    w.ask_threads()
    assert seen and "restarts" in seen[0] and "zero" in seen[0]


def test_a_backup_pool_added_below_restarts_nothing(qtbot, bridge, open_window, monkeypatch):
    pool = PoolThread(difficulty_bits=16, jobs=None, job_interval=30.0).start()
    try:
        w = open_window(MinerConfig(threads=1, pools=[PoolConfig(pool.url, "w1", "x")]))
        monkeypatch.setattr(w, "confirm", lambda *a: pytest.fail("no restart, no question"))
        miner = bridge.made[-1]
        qtbot.waitUntil(lambda: w.lbl_state.text() == "Mining", timeout=30_000)
        w.pool_panel.set_form("stratum+tcp://127.0.0.1:9", "w2")
        with qtbot.assertNotEmitted(bridge.stopped, wait=1000):
            w.pool_panel.add_button.click()
        qtbot.waitUntil(lambda: len(bridge.last_snapshot["pools"]) == 2, timeout=10_000)
        assert bridge.made[-1] is miner and miner.running
        assert [p["url"] for p in bridge.last_snapshot["pools"]] == [
            pool.url, "stratum+tcp://127.0.0.1:9"]
        assert bridge.last_snapshot["pools"][0]["active"]
    finally:
        pool.stop()


# ------------------------------------------------------------------ 4. keyboard
def test_the_table_is_one_tab_stop_and_ctrl_tab_switches_tabs(qtbot, bridge, open_window):
    w = open_window(embedded(threads=2, bits=16))
    qtbot.waitUntil(lambda: w.model.rowCount() == 2, timeout=30_000)
    w.activateWindow()
    w.table.setFocus()
    qtbot.waitUntil(lambda: w.table.hasFocus(), timeout=30_000)
    qtbot.keyClick(w.table, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is w.start_all_button
    w.table.setFocus()
    qtbot.keyClick(w.table, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is w.charts
    qtbot.keyClick(w.tabs.currentWidget(), Qt.Key.Key_PageDown,
                   Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is w.pool_panel
    assert w.act_start_all.shortcut().toString() == "F5"
    assert w.act_stop_all.shortcut().toString() == "Shift+F5"


def mnemonic(text: str) -> str | None:
    i = text.replace("&&", "").find("&")
    return text.replace("&&", "")[i + 1].lower() if i >= 0 else None


def test_mnemonics_are_unique_among_what_is_on_screen_together(bare_window):
    """Every tab has a key (Rigs too).  Qt fires the key of a visible widget only, so a
    key must be unique among the tabs, the menus and the page shown: a tab's key is free
    on every page, two pages may reuse one of their own."""
    w = bare_window()
    pages = [w.tabs.widget(i) for i in range(w.tabs.count())]
    tab_texts = [w.tabs.tabText(i) for i in range(w.tabs.count())]
    assert all(mnemonic(t) for t in tab_texts), tab_texts

    def labelled(root) -> list:
        return ([b for b in root.findChildren(QAbstractButton)]
                + [lb for lb in root.findChildren(QLabel) if lb.buddy() is not None])

    def keys_of(widgets) -> list[str]:
        return [k for k in (mnemonic(x.text()) for x in widgets) if k]

    always = keys_of([a for a in w.menuBar().actions()]) + [mnemonic(t) for t in tab_texts]
    always += keys_of([x for x in labelled(w) if not any(p.isAncestorOf(x) for p in pages)])
    seen = set(always)
    for page, title in zip(pages, tab_texts, strict=True):
        keys = always + keys_of(labelled(page))
        assert all(k in string.ascii_lowercase for k in keys)
        assert len(keys) == len(set(keys)), (title, sorted(keys))
        seen |= set(keys)
    assert len(seen) >= 15


# ------------------------------------------------------------------ 5. config file
def test_a_bad_value_survives_a_device_toggle(qtbot, bridge, open_window, tmp_path):
    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"threads": "two", "gui": {"close_to_tray": False}}))
    settings, warnings = load_settings(path)
    w = open_window(embedded(threads=2, bits=16), settings, warnings)
    qtbot.waitUntil(lambda: w.model.rowCount() == 2, timeout=30_000)
    w.model.setData(w.model.index(1, COL_ENABLED), Qt.CheckState.Unchecked.value,
                    Qt.ItemDataRole.CheckStateRole)
    data = json.loads(path.read_text())
    assert data["threads"] == "two" and data["gui"]["disabled_devices"] == ["cpu1"]
    w.stop_all()                                          # the save after: still there
    assert json.loads(path.read_text())["threads"] == "two"


def test_a_non_json_file_is_kept_byte_for_byte_unless_the_user_agrees(
        qtbot, bridge, open_window, tmp_path, monkeypatch):
    path = tmp_path / "sgm.json"
    original = b'{"pools": [ {"url": "stratum+tcp://pool:3333",, } ]\n'
    path.write_bytes(original)
    settings, warnings = load_settings(path)
    asked: list[Path] = []
    monkeypatch.setattr(mw, "by_user_agrees", lambda parent, p, inv: asked.append(p) or False)
    w = open_window(embedded(threads=1, bits=16), settings, warnings)
    qtbot.waitUntil(lambda: w.model.rowCount() == 1, timeout=30_000)
    w.stop_all()                                          # a change: the user is asked ...
    w.start_all()                                         # ... once
    assert asked == [path]
    assert path.read_bytes() == original and not path.with_name("sgm.json.invalid").exists()
    assert "left as it is" in w.banner.text() and w.banner_box.isVisible()
    with qtbot.waitSignal(w.closed, timeout=30_000):
        w.request_quit()
    assert path.read_bytes() == original


def test_a_non_json_file_is_replaced_when_the_user_agrees(qtbot, bridge, open_window,
                                                          tmp_path, monkeypatch):
    path = tmp_path / "sgm.json"
    path.write_bytes(b"not json")
    settings, warnings = load_settings(path)
    monkeypatch.setattr(mw, "by_user_agrees", lambda *a: True)
    w = open_window(embedded(threads=1, bits=16), settings, warnings)
    qtbot.waitUntil(lambda: w.model.rowCount() == 1, timeout=30_000)
    w.stop_all()
    assert json.loads(path.read_text())["gui"]["disabled_devices"] == ["cpu0"]
    assert path.with_name("sgm.json.invalid").read_bytes() == b"not json"
    assert "replaced" in w.banner.text() and "is left as it is" not in w.banner.text()


# ------------------------------------------------------------------ 6. pool URLs
@pytest.fixture
def panel(qtbot) -> PoolPanel:
    widget = PoolPanel()
    qtbot.addWidget(widget)
    widget.resize(800, 480)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.mark.parametrize("url, words", [
    ("stratum+tcp//bad", "stratum+tcp://"), ("pool example.com:3333", "spaces"),
    ("stratum+tcp://pool!:3333", "not a valid host"),
])
def test_a_malformed_url_gets_the_engines_words(panel, url, words):
    panel.set_form(url, "wallet.w")
    assert panel.add_from_form() is False
    text = panel.error_text("url")
    assert words in text and "stratum+tcp:3333" not in text and panel.pools() == []


def test_a_url_without_a_scheme_is_saved_with_it(panel):
    panel.set_form("pool.example.com:3333", "wallet.w")
    assert panel.add_from_form() is True
    assert panel.pools()[0].url == "stratum+tcp://pool.example.com:3333"


def test_error_lines_go_after_remove_and_the_form_does_not_jump(panel, qtbot):
    panel.set_pools([PoolConfig("stratum+tcp://a.example.com:3333", "w", "x")])
    user_y = panel.user_edit.mapTo(panel, panel.user_edit.rect().topLeft()).y()
    panel.set_form("stratum+tcp//bad", "w")
    panel.add_from_form()
    qtbot.wait(50)
    assert panel.error_text("url")
    assert panel.user_edit.mapTo(panel, panel.user_edit.rect().topLeft()).y() == user_y
    panel.select_row(0)
    panel.remove_selected()
    assert panel.error_text("url") == "" and panel.error_text("user") == ""


# ------------------------------------------------------------------ 8. help and title
def test_about_says_the_version_licence_and_config_path(bare_window, tmp_path):
    path = tmp_path / "sgm.json"
    w = bare_window(path)
    text = w.about_text()
    assert __version__ in text and __version__ not in ("", "unknown")
    assert f"Licence: {LICENSE}" in text and str(path) in text
    assert [a.text() for a in w.menuBar().actions()][-1] == "&Help"
    assert w.windowTitle() == "sgm"


def geometry_from_another_screen() -> str:
    """What saveGeometry wrote for a 700x500 window on a screen 4 times as wide as this
    one (a laptop's screen after a large monitor, or the other way round)."""
    probe = QWidget()
    probe.resize(700, 500)
    blob = bytearray(probe.saveGeometry().data())
    assert bytes(blob[:4]) == mw.GEOMETRY_MAGIC
    width = probe.screen().geometry().width()
    blob[46:50] = (4 * width).to_bytes(4, "big")     # format 3: the screen's width
    probe.deleteLater()
    return base64.b64encode(bytes(blob)).decode()


def test_a_size_saved_on_another_screen_gives_the_default_without_a_warning(qtbot, bridge):
    w = MainWindow(bridge, embedded(), GuiSettings(geometry=geometry_from_another_screen()))
    qtbot.addWidget(w)
    try:
        assert w.banner.text() == "" and not w.banner_box.isVisibleTo(w)
        assert w.size() == fit_size(w.screen().availableGeometry())
    finally:
        w.timer.stop()
        w.log_pane.detach()


def test_a_saved_size_that_is_no_window_size_is_warned_about(qtbot, bridge):
    w = MainWindow(bridge, embedded(), GuiSettings(geometry=base64.b64encode(
        bytes(66)).decode()))
    qtbot.addWidget(w)
    try:
        assert "saved window size could not be used" in w.banner.text()
    finally:
        w.timer.stop()
        w.log_pane.detach()


def test_a_headless_run_keeps_the_size_saved_on_a_screen(qtbot, bridge, open_window,
                                                         tmp_path):
    assert QApplication.platformName() in mw.HEADLESS     # (the tests run offscreen)
    saved = geometry_from_another_screen()
    w = open_window(embedded(threads=1, bits=16), GuiSettings(geometry=saved))
    with qtbot.waitSignal(w.closed, timeout=30_000):
        w.close()
    kept, warnings = load_settings(tmp_path / "sgm.json")
    assert warnings == [] and kept.geometry == saved


def test_fit_size_keeps_a_saved_size_that_fits():
    assert fit_size(QRect(0, 0, 1920, 1080), QSize(1000, 700)) == QSize(1000, 700)


# ------------------------------------------------------------------ 11. narrow window
def test_at_800_pixels_accepted_and_hw_errors_stay_in_view(qtbot, bare_window):
    """The columns a user checks come first: at 800x600 Accepted and HW errors are visible
    without scrolling (Kind, Batch and Latency scroll away instead)."""
    w = bare_window()
    w.resize(786, 545)
    w.show()
    qtbot.waitExposed(w)
    w.model.update_from_summary({"devices": [{"name": "cpu0", "kind": "cpu", "enabled": True}]})
    w.model.apply()
    room = w.table.viewport().width()
    for col in (COL_ACCEPTED, COL_HW):
        right = w.table.columnViewportPosition(col) + w.table.columnWidth(col)
        assert 0 <= w.table.columnViewportPosition(col) and right <= room, (col, right, room)


# ------------------------------------------------------------------ 9. words
def test_every_column_has_a_tooltip_and_the_words_are_plain(bare_window):
    w = bare_window()
    for model in (w.model, w.pool_panel.model):
        for col in range(model.columnCount()):
            tip = model.headerData(col, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
            assert tip and len(tip) > 10, (type(model).__name__, col)
    w.model.update_from_summary({"devices": [{"name": "cpu0", "kind": "cpu", "enabled": True}]})
    w.model.apply()
    assert w.model.data(w.model.index(0, COL_KIND)) == "CPU"
    texts = [lb.text() for lb in w.findChildren(QLabel)]
    texts += [b.text() for b in w.findChildren(QAbstractButton)]
    assert not [t for t in texts if "`" in t]


# ------------------------------------------------------------------ 10. benchmark tab
def test_mining_pauses_while_the_benchmark_measures_and_resumes_after(qtbot, bridge,
                                                                      open_window, tmp_path):
    """The engine's own snapshots show every device off while the run measures and on
    again after it; the pause is not a choice the settings file keeps."""
    w = open_window(embedded(threads=1, bits=16))
    qtbot.waitUntil(lambda: w.lbl_state.text() == "Mining", timeout=30_000)
    tab = w.bench_tab
    assert tab.pause_check.isChecked()                # the default
    tab._impls = [IMPL]
    tab.seconds_spin.setValue(1.0)
    tab.repeats_spin.setValue(2)
    tab.threads_spin.setValue(1)
    during: list[list[bool]] = []
    bridge.snapshot.connect(
        lambda snap: during.append([bool(d["enabled"]) for d in snap["summary"]["devices"]])
        if tab.is_running() else None)
    with qtbot.waitSignal(tab.run_ended, timeout=120_000):
        assert tab.run()
        assert "Mining is paused" in tab.status_label.text()
    assert [False] in during
    qtbot.waitUntil(lambda: w.lbl_state.text() == "Mining" and
                    [d["enabled"] for d in bridge.last_snapshot["summary"]["devices"]]
                    == [True], timeout=30_000)
    w.log_pane.flush()
    assert "Mining paused while the benchmark measures: cpu0" in w.log_pane.text()
    assert "mining resumed on cpu0" in w.log_pane.text()
    path = tmp_path / "sgm.json"
    if path.exists():
        assert load_settings(path)[0].disabled_devices == []
    # Stop all while a run measures is the user's word: the run's end does not undo it
    with qtbot.waitSignal(tab.run_ended, timeout=120_000):
        assert tab.run()
        w.stop_all()
    later: list[list[bool]] = []
    bridge.snapshot.connect(
        lambda snap: later.append([bool(d["enabled"]) for d in snap["summary"]["devices"]]))
    qtbot.waitUntil(lambda: len(later) >= 3, timeout=30_000)
    assert later[-1] == [False] and w.lbl_state.text() == "Stopped"
    assert load_settings(path)[0].disabled_devices == ["cpu0"]
