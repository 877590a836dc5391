"""The main window over a real miner on the embedded pool, and `sgm-gui` as a program.

* a device switched off in the table stops hashing (its hash count freezes, its rate reads 0
  within 2 s) while the others go on; switched on it resumes;
* the charts receive points while mining and the status-bar counters equal the engine's;
* closing the window stops mining: no engine thread left;
* a screenshot of the window while mining is a real, non-blank PNG;
* `sgm-gui --quit-after 10 --summary-json ... --screenshot ...`: exit 0, accepted shares, PNG;
* a wrong type in one config field: the app starts, says so, the rest loads;
* usage errors exit 2 with a message.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from sgm.miner import MinerConfig
from sgm_gui import app as gui_app
from sgm_gui.icon import make_icon, render_icon_png
from sgm_gui.models.device_table import COL_ENABLED
from sgm_gui.settings import load_settings

from .conftest import START_TIMEOUT_MS, embedded, engine_threads, wait_no_engine_threads

ROOT = Path(__file__).resolve().parents[2]


def snapshots(bridge) -> list[dict]:
    seen: list[dict] = []
    bridge.snapshot.connect(seen.append)
    return seen


def test_toggling_a_device_off_stops_its_hashing_while_the_others_go_on(qtbot, bridge, open_window):
    snaps = snapshots(bridge)
    w = open_window(embedded(threads=2, bits=22))
    model = w.model
    qtbot.waitUntil(lambda: model.names() == ["cpu0", "cpu1"]
                    and all(model.row(n).hashes > 0 for n in ("cpu0", "cpu1")), timeout=30_000)

    asked = time.time()
    assert model.setData(model.index(1, COL_ENABLED), Qt.CheckState.Unchecked.value,
                         Qt.ItemDataRole.CheckStateRole)
    qtbot.waitUntil(lambda: not model.row("cpu1").enabled and model.row("cpu1").rate_5s == 0.0,
                    timeout=30_000)
    # the engine's side, by the snapshots' clock: when did cpu1's rate first read 0?
    zero_at = next(s["t"] for s in snaps if s["t"] > asked and s["rates_now"].get("cpu1") == 0.0)
    assert zero_at - asked <= 2.0, f"cpu1 still hashing {zero_at - asked:.2f} s after the toggle"
    # the engine's side: cpu1's worker is idle; the table catches up with its last count
    qtbot.waitUntil(lambda: not bridge.miner.device("cpu1").hashing, timeout=30_000)
    frozen = next(d["hashes"] for d in bridge.miner.summary()["devices"] if d["name"] == "cpu1")
    qtbot.waitUntil(lambda: model.row("cpu1").hashes == frozen, timeout=30_000)
    other = model.row("cpu0").hashes
    # cpu0 goes on (its hashes count at the end of each batch: ~0.1 s here, seconds on a
    # machine whose busy processes starve the nice-19 workers) while cpu1 stays frozen
    qtbot.waitUntil(lambda: model.row("cpu0").hashes > other + 10**6, timeout=60_000)
    assert model.row("cpu1").hashes == frozen            # no more hashing on cpu1
    assert model.data(model.index(1, COL_ENABLED)) == "off"
    assert bridge.miner.device("cpu1").enabled is False
    assert w.settings.disabled_devices == ["cpu1"]       # remembered for the next start

    assert model.setData(model.index(1, COL_ENABLED), Qt.CheckState.Checked.value,
                         Qt.ItemDataRole.CheckStateRole)
    qtbot.waitUntil(lambda: model.row("cpu1").enabled and model.row("cpu1").hashes > frozen
                    and model.row("cpu1").rate_5s > 0, timeout=30_000)
    assert w.settings.disabled_devices == []


def test_charts_get_points_and_the_status_bar_counters_equal_the_engines(qtbot, bridge, open_window):
    w = open_window(embedded(threads=2, bits=16))
    w.tabs.setCurrentWidget(w.charts)
    qtbot.waitUntil(lambda: bridge.miner.summary()["accepted"] >= 5, timeout=30_000)
    qtbot.waitUntil(lambda: sum(w.charts.point_counts().values()) > 10, timeout=30_000)
    counts = w.charts.point_counts()
    assert counts and all(v >= 0 for v in counts.values())
    with qtbot.waitSignal(bridge.stopped, timeout=30_000):
        bridge.stop()
    s = bridge.miner.summary()

    def counters_match() -> bool:
        return w.counters()["accepted"] == f"Accepted {s['accepted']:,}"

    qtbot.waitUntil(counters_match, timeout=10_000)
    c = w.counters()
    assert s["accepted"] > 0
    assert c["rejected"] == f"Rejected {s['rejected']:,}"
    assert c["stale"] == f"Stale {s['stale']:,}"
    assert c["best"] == f"Best share {s['best_share_diff']:.4g}"
    assert c["rate"] == "0 H/s"                          # stopped
    table = {n: w.model.row(n).accepted for n in w.model.names()}
    assert table == {d["name"]: d["accepted"] for d in s["devices"]}


def test_closing_the_window_stops_mining_and_leaves_no_engine_thread(qtbot, bridge, open_window, tmp_path):
    w = open_window(embedded(threads=2, bits=20))
    qtbot.waitUntil(lambda: bridge.miner.summary()["hashes"] > 0, timeout=30_000)
    assert engine_threads()
    with qtbot.waitSignal(w.closed, timeout=30_000):
        w.close()
    assert not bridge.running and not bridge.miner.running
    assert wait_no_engine_threads() == []
    saved, warnings = load_settings(tmp_path / "sgm.json")
    assert warnings == [] and saved.geometry           # the window's size is remembered


def test_a_screenshot_of_the_window_while_mining_is_a_real_png(qtbot, bridge, open_window, tmp_path):
    w = open_window(embedded(threads=2, bits=16))
    qtbot.waitUntil(lambda: w.model.rowCount() == 2 and
                    bridge.miner.summary()["accepted"] >= 3, timeout=30_000)
    qtbot.wait(600)    # a tick applies the counters
    path = tmp_path / "mining.png"
    assert w.grab().save(str(path), "PNG")
    assert_real_screenshot(path, w.width(), w.height())


def assert_real_screenshot(path: Path, width: int | None = None, height: int | None = None) -> None:
    """A PNG with the window's size and a real picture in it (many colours, no blank)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = QImage(str(path))
    assert not img.isNull()
    if width is not None:
        assert (img.width(), img.height()) == (width, height)
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 20, f"only {len(colours)} colours: a blank window?"


def test_a_wrong_type_in_one_config_field_is_shown_and_the_rest_loads(qtbot, bridge, open_window, tmp_path):
    cfg = tmp_path / "sgm.json"
    cfg.write_text(json.dumps({"threads": "two", "devices": "cpu", "difficulty": 18,
                               "gui": {"close_to_tray": True, "disabled_devices": ["cpu0"]}}))
    settings, warnings = load_settings(cfg)
    args = gui_app.build_parser().parse_args(["-c", str(cfg)])
    config = gui_app.build_config(args, settings, cfg, warnings)
    assert any('"threads"' in m for m in warnings)
    assert config.threads is None and config.device_kinds == ("cpu",)
    assert config.local_difficulty_bits == 18 and config.local_jobs is None
    w = open_window(config, settings, warnings, start=False)
    assert "threads" in w.banner.text() and w.banner_box.isVisible()
    assert w.act_close_to_tray.isChecked()               # the rest of the file loaded
    config.threads = 1
    with qtbot.waitSignal(bridge.started, timeout=START_TIMEOUT_MS):
        w.start_mining()
    qtbot.waitUntil(lambda: w.model.names() == ["cpu0"], timeout=30_000)
    qtbot.waitUntil(lambda: not w.model.row("cpu0").enabled, timeout=30_000)   # from the file
    qtbot.waitUntil(lambda: "every device is switched off" in w.session_label.text(),
                    timeout=10_000)
    assert w.lbl_state.text() == "Stopped"
    assert w.model.row("cpu0").hashes == 0     # switched off from the start, never hashed
    assert "threads" in w.banner.text()          # settings warnings outlive a good start


@pytest.mark.parametrize("argv, fragment", [
    (["-u", "w"], "-u/-p given without -o"),
    (["-o", "http://example.com:80"], "scheme"),
    (["--difficulty", "0"], "positive integer"),
    (["-t", "x"], "not an integer"),
    (["--devices", "toaster"], "toaster"),
    (["-c", "/nonexistent/sgm.json"], "no such file"),
])
def test_usage_errors_exit_2_with_a_message(argv, fragment, capsys):
    assert gui_app.main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_no_display_is_a_one_line_error_and_exit_2(tmp_path):
    """No DISPLAY, no WAYLAND_DISPLAY, no QT_QPA_PLATFORM: Qt would abort the process with
    a core dump and a page of plugin lines; sgm-gui says what to do and exits 2."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    r = subprocess.run([sys.executable, "-m", "sgm_gui.app", "-t", "1", "--quit-after", "1"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("sgm-gui: no display (set DISPLAY or run with "
                                "QT_QPA_PLATFORM=offscreen)")
    assert not (tmp_path / "cfg").exists()           # nothing written on the way out


@pytest.mark.parametrize("env, platform, words", [
    ({}, "linux", "no display"),
    ({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux", "no X display"),
    ({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, "linux", "no Wayland display"),
    ({"DISPLAY": ":0"}, "linux", None),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", None),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", None),
    ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, "linux", None),
    ({}, "darwin", None),
    ({}, "win32", None),
])
def test_display_problem_knows_which_platform_needs_which_display(env, platform, words):
    problem = gui_app.display_problem(env, platform)
    assert (problem is None) if words is None else problem.startswith(words)


def test_the_icon_is_drawn_and_exported(qtbot, tmp_path):
    assert not make_icon().isNull()
    render_icon_png(str(tmp_path / "i" / "sgm.png"), 128)
    img = QImage(str(tmp_path / "i" / "sgm.png"))
    assert (img.width(), img.height()) == (128, 128)
    assert img.pixelColor(64, 64).alpha() == 255 and img.pixelColor(0, 0).alpha() == 0


@pytest.mark.slow
def test_sgm_gui_scripted_run_mines_and_writes_the_summary_and_screenshot(tmp_path):
    summary, shot = tmp_path / "summary.json", tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    script = Path(sys.executable).with_name("sgm-gui")     # the installed console script
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "sgm_gui.app"]
    r = subprocess.run([*cmd, "--quit-after", "10", "-t", "2",
                        "--difficulty", "16", "--summary-json", str(summary),
                        "--screenshot", str(shot)],
                       capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    s = json.loads(summary.read_text())
    assert s["accepted"] > 0 and s["hashes"] > 0
    assert {"elapsed_s", "hashrate", "rejected", "stale", "hw_errors", "best_share_diff",
            "devices"} <= set(s)
    assert [d["name"] for d in s["devices"]] == ["cpu0", "cpu1"]
    assert_real_screenshot(shot)
    # the default config file (user config dir) now holds the window's settings
    saved = json.loads((tmp_path / "cfg" / "sgm" / "sgm.json").read_text())
    assert saved["gui"]["geometry"]


def test_a_pool_added_in_the_panel_is_saved_and_mined(qtbot, bridge, open_window, tmp_path,
                                                     monkeypatch):
    """The user adds a pool while the embedded pool is mined and confirms the restart: the
    settings file gets it (in the CLI's shape) and mining restarts on it."""
    from sgm.pool import PoolThread

    pool = PoolThread(difficulty_bits=16, jobs=None, job_interval=30.0).start()
    try:
        w = open_window(embedded(threads=1, bits=16))
        asked: list[str] = []
        monkeypatch.setattr(w, "confirm", lambda title, text, action: asked.append(text) or True)
        qtbot.waitUntil(lambda: w.model.rowCount() == 1, timeout=30_000)
        w.tabs.setCurrentWidget(w.pool_panel)
        w.pool_panel.set_form(pool.url, "wallet.rig", "pw")
        with qtbot.waitSignals([bridge.stopped, bridge.started], timeout=START_TIMEOUT_MS):
            w.pool_panel.add_button.click()
        assert len(asked) == 1 and "counters" in asked[0]
        saved = json.loads((tmp_path / "sgm.json").read_text())
        assert saved["pools"] == [{"url": pool.url, "user": "wallet.rig", "pass": "pw"}]
        miner = bridge.made[-1]
        assert miner is not bridge.made[0] and not bridge.made[0].running
        qtbot.waitUntil(lambda: miner.telemetry.total.accepted >= 1, timeout=30_000)
        assert miner.pool_status()[0]["state"] == "connected"
        qtbot.waitUntil(lambda: "wallet.rig" in w.session_label.text(), timeout=10_000)
        with qtbot.waitSignal(w.closed, timeout=30_000):
            w.request_quit()
        assert "wallet.rig" in pool.stats.workers and pool.stats.accepted >= 1
        # the next start reads it back: no -o, so the file's pool is mined
        settings, warnings = load_settings(tmp_path / "sgm.json")
        args = gui_app.build_parser().parse_args(["-c", str(tmp_path / "sgm.json")])
        config = gui_app.build_config(args, settings, tmp_path / "sgm.json", warnings)
        assert warnings == []
        assert [(p.url, p.user, p.password) for p in config.pools] == [(pool.url, "wallet.rig", "pw")]
    finally:
        pool.stop()


def test_a_new_thread_count_is_saved_and_mining_restarts_with_it(qtbot, bridge, open_window,
                                                                  tmp_path):
    w = open_window(embedded(threads=2, bits=16))
    qtbot.waitUntil(lambda: w.model.names() == ["cpu0", "cpu1"], timeout=30_000)
    assert "CPU" in w.act_threads.text()
    with qtbot.waitSignals([bridge.stopped, bridge.started], timeout=START_TIMEOUT_MS):
        w.set_threads(1)
    assert json.loads((tmp_path / "sgm.json").read_text())["threads"] == 1
    miner = bridge.made[-1]
    assert [d.name for d in miner.devices] == ["cpu0"] and not bridge.made[0].running
    qtbot.waitUntil(lambda: w.model.names() == ["cpu0"], timeout=30_000)
    qtbot.waitUntil(lambda: miner.telemetry.device("cpu0").hashes > 0, timeout=60_000)
    w.set_threads(5000)                                   # refused with a message
    assert "1..1024" in w.banner.text() and w.config.threads == 1
    settings, _ = load_settings(tmp_path / "sgm.json")    # the next start reads it back
    assert settings.threads == 1


def test_stop_all_and_start_all_switch_every_device(qtbot, bridge, open_window):
    w = open_window(embedded(threads=2, bits=22))
    model = w.model
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=30_000)
    w.stop_all_button.click()
    qtbot.waitUntil(lambda: not any(model.row(n).enabled for n in model.names())
                    and all(model.row(n).rate_5s == 0 for n in model.names()), timeout=30_000)
    # every worker idle (an aborted batch may report after the flag flipped), then nothing
    qtbot.waitUntil(lambda: not any(bridge.miner.device(n).hashing for n in model.names()),
                    timeout=30_000)
    frozen = bridge.miner.summary()["hashes"]
    # two more snapshots from the engine (a positive event: time went by and was observed)
    for _ in range(2):
        with qtbot.waitSignal(bridge.snapshot, timeout=30_000):
            pass
    assert bridge.miner.summary()["hashes"] == frozen and bridge.running   # pool still there
    assert w.counters()["rate"] == "0 H/s"
    at_stop = {n: model.row(n).hashes for n in model.names()}
    w.start_all_button.click()
    # a device's rate shows again once it reported new work (not the old average at once)
    qtbot.waitUntil(lambda: all(model.row(n).enabled and model.row(n).rate_5s > 0
                                for n in model.names()), timeout=60_000)
    assert all(model.row(n).hashes > at_stop[n] for n in model.names())


def test_the_log_pane_shows_the_engines_lines_and_a_failed_start_is_explained(qtbot, bridge, open_window):
    w = open_window(MinerConfig(threads=1, device_kinds=("opencl9.9",)), start=False)
    with qtbot.waitSignal(bridge.failed, timeout=START_TIMEOUT_MS):
        w.start_mining()
    qtbot.waitUntil(lambda: "opencl9.9" in w.banner.text(), timeout=10_000)
    assert w.banner_box.isVisible() and w.start_error and "opencl9.9" in w.start_error
    w.log_pane.flush()
    assert "Mining could not start" in w.log_pane.text()
    # Start all tries again: here with a config that works
    w.config = embedded(threads=1, bits=20)
    with qtbot.waitSignal(bridge.started, timeout=START_TIMEOUT_MS):
        w.start_all_button.click()
    qtbot.waitUntil(lambda: not w.banner_box.isVisible(), timeout=10_000)   # no stale failure

    def connected_line() -> bool:
        w.log_pane.flush()
        return "pool: connected to" in w.log_pane.text()

    qtbot.waitUntil(connected_line, timeout=30_000)
    qtbot.waitUntil(lambda: "job 1" in w.log_pane.text(), timeout=30_000)
    w.log_pane.flush()
    text = w.log_pane.text()
    assert "sgm.stratum" not in text                       # told once, as "pool: ..."
    assert text.count("job 1 (clean)") == 1


def test_rejected_reasons_are_in_the_tooltip(qtbot, bridge, open_window):
    """The status bar shows what the snapshot says, reasons of rejections included (a
    pool that rejects on demand does not exist here, so the snapshot is edited)."""
    w = open_window(embedded(threads=1, bits=20))
    qtbot.waitUntil(lambda: w._snap is not None, timeout=30_000)
    # live snapshots keep arriving and would paint over the edited one before the
    # window's next repaint on a loaded machine: take the window off the feed first
    # (calls already queued are still delivered: let them land before the edit)
    bridge.snapshot.disconnect(w._on_snapshot)
    QApplication.processEvents()
    snap = dict(w._snap)
    snap["summary"] = dict(snap["summary"], rejected=3,
                           rejected_reasons={"low difficulty": 2, "duplicate": 1})
    w._on_snapshot(snap)
    qtbot.waitUntil(lambda: w.counters()["rejected"] == "Rejected 3", timeout=30_000)
    tip = w.lbl_rejected.toolTip()
    assert "low difficulty: 2" in tip and "duplicate: 1" in tip


def test_the_embedded_pool_finishing_its_jobs_stops_mining(qtbot, bridge, open_window):
    w = open_window(MinerConfig(threads=1, local_jobs=1, local_job_interval=1.0,
                                local_difficulty_bits=20))
    with qtbot.waitSignal(bridge.stopped, timeout=30_000):
        pass
    assert not bridge.running
    qtbot.waitUntil(lambda: "issued all its jobs" in w.session_label.text(), timeout=30_000)


def test_a_file_with_problems_is_not_rewritten_unless_the_user_changes_a_setting(qtbot, bridge, open_window, tmp_path):
    """Closing the window must not put defaults over the fields the user may fix by hand;
    a setting the user changes is saved (the previous file kept as .bak)."""
    cfg = tmp_path / "sgm.json"
    original = json.dumps({"threads": "two", "devices": "cpu", "jobs": 7})
    cfg.write_text(original)
    settings, warnings = load_settings(cfg)
    w = open_window(embedded(threads=1), settings, warnings, start=False)
    with qtbot.waitSignal(w.closed, timeout=30_000):
        w.request_quit()
    assert cfg.read_text() == original

    w2 = open_window(embedded(threads=1), settings, warnings, start=False)
    w2.act_close_to_tray.setChecked(True)          # the user changes a setting
    saved = json.loads(cfg.read_text())
    assert saved["gui"]["close_to_tray"] is True and saved["jobs"] == 7
    assert saved["threads"] == "two"       # unread: kept until the user sets threads
    assert (tmp_path / "sgm.json.bak").read_text() == original


@pytest.mark.slow
def test_sigterm_quits_cleanly_with_the_summary(tmp_path):
    """A desktop session ending (SIGTERM) stops mining like File > Quit: exit 0, summary."""
    import signal

    summary = tmp_path / "summary.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    proc = subprocess.Popen([sys.executable, "-m", "sgm_gui.app", "-t", "1", "--difficulty", "18",
                             "--summary-json", str(summary)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    try:
        time.sleep(8)      # start-up and some mining (no upper bound on anything below)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    s = json.loads(summary.read_text())
    assert s["hashes"] > 0 and [d["name"] for d in s["devices"]] == ["cpu0"]
