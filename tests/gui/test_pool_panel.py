"""gui/widgets/pool_panel.py: the pool list and its form.

Bad input is refused with a visible message next to the field and the list unchanged; good
edits emit the new ordered list; set_status shows a real Miner's pool_status() rows (a real
miner mining a real embedded pool through the configured URL).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6 import QtCore

from sgm.miner import Miner, MinerConfig, PoolConfig
from sgm.pool.thread import PoolThread
from sgm_gui.settings import GuiSettings, load_settings, save_settings
from sgm_gui.widgets.pool_panel import COL_DIFF, COL_LATENCY, COL_STATE, PoolPanel

A = PoolConfig("stratum+tcp://a.example.com:3333", "wallet.a", "x")
B = PoolConfig("stratum+tcp://b.example.com:3334", "wallet.b", "pw")
C = PoolConfig("stratum+ssl://c.example.com:443", "wallet.c", "x")


@pytest.fixture
def panel(qtbot) -> PoolPanel:
    widget = PoolPanel()
    qtbot.addWidget(widget)
    widget.resize(800, 480)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def fill(panel: PoolPanel, qtbot, url: str, user: str, password: str = "") -> None:
    """Type into the form the way a user does."""
    for edit, text in ((panel.url_edit, url), (panel.user_edit, user),
                       (panel.password_edit, password)):
        edit.clear()
        if text:
            qtbot.keyClicks(edit, text)


def cell(panel: PoolPanel, row: int, col: int) -> str:
    return panel.model.data(panel.model.index(row, col))


@pytest.mark.parametrize("url, field, words", [
    ("stratum+tcp://pool.example.com", "url", "needs a port"),
    ("http://pool.example.com:80", "url", "scheme"),
    ("stratum+tcp://pool.example.com:70000", "url", "port"),
    ("", "url", "Enter the pool URL"),
])
def test_a_malformed_url_is_refused_with_a_message(panel: PoolPanel, qtbot, url, field,
                                                   words) -> None:
    panel.set_pools([A])
    fill(panel, qtbot, url, "wallet.new")
    with qtbot.assertNotEmitted(panel.pools_changed):
        qtbot.mouseClick(panel.add_button, QtCore.Qt.LeftButton)
    label = panel.errors[field]
    assert label.isVisible() and words in label.text()
    assert panel.error_text(field) == label.text()
    assert not panel.errors["user"].isVisible()
    assert panel.pools() == [A]
    assert panel.model.rowCount() == 1


def test_an_empty_user_is_refused_with_a_message(panel: PoolPanel, qtbot) -> None:
    panel.set_pools([A])
    fill(panel, qtbot, "stratum+tcp://new.example.com:3333", "   ")
    with qtbot.assertNotEmitted(panel.pools_changed):
        qtbot.mouseClick(panel.add_button, QtCore.Qt.LeftButton)
    assert panel.errors["user"].isVisible()
    assert "cannot be empty" in panel.errors["user"].text()
    assert not panel.errors["url"].isVisible()
    assert panel.pools() == [A]
    # typing into the field takes its message away
    qtbot.keyClicks(panel.user_edit, "w")
    assert not panel.errors["user"].isVisible()


def test_both_messages_at_once_and_a_duplicate_is_refused(panel: PoolPanel, qtbot) -> None:
    fill(panel, qtbot, "nonsense", "")
    assert panel.add_from_form() is False
    assert panel.error_text("url") and panel.error_text("user")
    panel.set_pools([A])
    fill(panel, qtbot, A.url, A.user)
    with qtbot.assertNotEmitted(panel.pools_changed):
        assert panel.add_from_form() is False
    assert "already pool 1" in panel.error_text("url")
    assert panel.pools() == [A]


def test_good_values_emit_the_new_ordered_list(panel: PoolPanel, qtbot) -> None:
    panel.set_pools([A])
    fill(panel, qtbot, "  stratum+tcp://b.example.com:3334 ", "wallet.b", "pw")
    with qtbot.waitSignal(panel.pools_changed, timeout=30_000) as blocker:
        qtbot.mouseClick(panel.add_button, QtCore.Qt.LeftButton)
    assert blocker.args == [[A, B]]
    assert panel.pools() == [A, B]
    assert panel.selected_row() == 1
    assert not any(label.isVisible() for label in panel.errors.values())
    # a blank password is stored as the CLI's default "x"
    fill(panel, qtbot, C.url, C.user, "")
    panel.select_row(None)
    with qtbot.waitSignal(panel.pools_changed) as blocker:
        qtbot.keyClick(panel.url_edit, QtCore.Qt.Key_Return)
    assert blocker.args == [[A, B, C]]


def test_save_edit_remove_and_move(panel: PoolPanel, qtbot) -> None:
    panel.set_pools([A, B, C])
    panel.select_row(1)
    assert panel.url_edit.text() == B.url and panel.password_edit.text() == B.password
    fill(panel, qtbot, "stratum+tcp://b2.example.com:4444", "wallet.b2", "p2")
    edited = PoolConfig("stratum+tcp://b2.example.com:4444", "wallet.b2", "p2")
    with qtbot.waitSignal(panel.pools_changed) as blocker:
        qtbot.mouseClick(panel.save_button, QtCore.Qt.LeftButton)
    assert blocker.args == [[A, edited, C]]

    # a bad edit is refused like a bad add
    fill(panel, qtbot, "stratum+tcp://b2.example.com", "wallet.b2")
    with qtbot.assertNotEmitted(panel.pools_changed):
        qtbot.mouseClick(panel.save_button, QtCore.Qt.LeftButton)
    assert "port" in panel.error_text("url") and panel.pools() == [A, edited, C]

    panel.select_row(2)
    with qtbot.waitSignal(panel.pools_changed) as blocker:
        qtbot.mouseClick(panel.up_button, QtCore.Qt.LeftButton)
    assert blocker.args == [[A, C, edited]] and panel.selected_row() == 1
    with qtbot.waitSignal(panel.pools_changed) as blocker:
        qtbot.mouseClick(panel.up_button, QtCore.Qt.LeftButton)
    assert blocker.args == [[C, A, edited]] and panel.selected_row() == 0
    assert not panel.up_button.isEnabled()              # already first
    with qtbot.waitSignal(panel.pools_changed) as blocker:
        qtbot.mouseClick(panel.down_button, QtCore.Qt.LeftButton)
    assert blocker.args == [[A, C, edited]]
    with qtbot.waitSignal(panel.pools_changed) as blocker:
        qtbot.mouseClick(panel.remove_button, QtCore.Qt.LeftButton)
    assert blocker.args == [[A, edited]] and panel.selected_row() == 1
    assert [cell(panel, r, 0) for r in range(2)] == ["1", "2"]


def test_set_pools_does_not_emit_and_buttons_follow_the_selection(panel: PoolPanel,
                                                                  qtbot) -> None:
    with qtbot.assertNotEmitted(panel.pools_changed):
        panel.set_pools([A, B])
    assert not panel.save_button.isEnabled() and not panel.remove_button.isEnabled()
    assert panel.save_edit() is False and "Select the pool" in panel.error_text("url")
    assert panel.remove_selected() is False and panel.move_selected(1) is False
    panel.select_row(1)
    assert panel.save_button.isEnabled() and not panel.down_button.isEnabled()


def test_set_status_shows_state_difficulty_and_latency_per_row(panel: PoolPanel) -> None:
    panel.set_pools([A, B])
    panel.set_status([
        {"url": B.url, "user": B.user, "state": "connecting", "active": False,
         "difficulty": None, "last_submit_ms": None},
        {"url": A.url, "user": A.user, "state": "connected", "active": True,
         "difficulty": 65536.0, "last_submit_ms": 42.31},
    ])
    assert cell(panel, 0, COL_STATE) == "connected (active)"
    assert cell(panel, 0, COL_DIFF) == "65536"
    assert cell(panel, 0, COL_LATENCY) == "42.3 ms"
    assert cell(panel, 1, COL_STATE) == "connecting"
    assert cell(panel, 1, COL_DIFF) == "" and cell(panel, 1, COL_LATENCY) == ""
    panel.select_row(1)
    panel.move_selected(-1)                    # status follows the pool, not the row number
    assert cell(panel, 0, COL_STATE) == "connecting"
    assert cell(panel, 1, COL_STATE) == "connected (active)"
    panel.set_status([{"url": 5}, "junk"])     # malformed rows are ignored, no crash
    assert cell(panel, 0, COL_STATE) == "\u2014"


def test_status_of_a_real_miner_on_a_configured_pool(panel: PoolPanel, qtbot) -> None:
    pool = PoolThread(difficulty_bits=16, jobs=None, job_interval=60.0).start()
    miner = None
    try:
        panel.set_pools([PoolConfig(pool.url, "wallet.rig", "x"), A])
        miner = Miner(MinerConfig(pools=panel.pools(), threads=1, device_kinds=("cpu",)))
        miner.start()

        def shown() -> bool:
            panel.set_status(miner.pool_status())
            return cell(panel, 0, COL_LATENCY).endswith("ms")

        qtbot.waitUntil(shown, timeout=30000)
        assert cell(panel, 0, COL_STATE) == "connected (active)"
        assert float(cell(panel, 0, COL_DIFF)) == pytest.approx(2.0 ** 16 / 2 ** 32, rel=1e-3)
        assert cell(panel, 1, COL_STATE) == "disconnected"      # the failover is idle
    finally:
        if miner is not None:
            miner.stop()
        pool.stop()


def test_the_embedded_pool_is_shown_when_no_pool_is_configured(panel: PoolPanel, qtbot) -> None:
    miner = Miner(MinerConfig(threads=1, device_kinds=("cpu",), local_jobs=None,
                              local_difficulty_bits=16))
    miner.start()
    try:
        def shown() -> bool:
            panel.set_status(miner.pool_status())
            return "submit round trip" in panel.local_label.text()

        qtbot.waitUntil(shown, timeout=30000)
    finally:
        miner.stop()
    assert panel.local_label.isVisible()
    assert "embedded local pool" in panel.local_label.text()
    assert miner.local_pool is not None and miner.local_pool.url in panel.local_label.text()
    panel.set_pools([A])
    assert not panel.local_label.isVisible()


def test_an_edit_is_saved_and_read_back_on_the_next_start(panel: PoolPanel, qtbot,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    settings = GuiSettings(threads=1)
    panel.pools_changed.connect(lambda pools: (setattr(settings, "pools", pools),
                                               save_settings(path, settings)))
    fill(panel, qtbot, B.url, B.user, B.password)
    qtbot.mouseClick(panel.add_button, QtCore.Qt.LeftButton)
    fill(panel, qtbot, A.url, A.user)
    qtbot.mouseClick(panel.add_button, QtCore.Qt.LeftButton)
    panel.move_selected(-1)
    loaded, warnings = load_settings(path)
    assert warnings == [] and loaded.pools == [A, B]
    restarted = PoolPanel()
    qtbot.addWidget(restarted)
    restarted.set_pools(loaded.pools)
    assert restarted.pools() == [A, B]
    assert [cell(restarted, r, 1) for r in range(2)] == [A.url, B.url]


# ------------------------------------------------------------------ suggested difficulty
@pytest.mark.parametrize("text", ["0", "-2", "abc", "inf", "nan", "1e400"])
def test_a_bad_suggested_difficulty_is_refused_with_a_message(panel: PoolPanel, qtbot,
                                                              text: str) -> None:
    panel.set_suggest_diff(4.0)
    panel.suggest_diff_edit.clear()
    qtbot.keyClicks(panel.suggest_diff_edit, text)
    with qtbot.assertNotEmitted(panel.suggest_diff_changed):
        qtbot.mouseClick(panel.suggest_diff_button, QtCore.Qt.LeftButton)
    assert "positive number" in panel.error_text("suggest_diff")
    assert panel.suggest_diff() == 4.0


def test_a_suggested_difficulty_is_announced_once_and_empty_means_the_pool_decides(
        panel: PoolPanel, qtbot) -> None:
    seen: list[float | None] = []
    panel.suggest_diff_changed.connect(seen.append)
    panel.set_suggest_diff(None)                       # loading settings never emits
    assert panel.suggest_diff_edit.text() == "" and seen == []
    qtbot.keyClicks(panel.suggest_diff_edit, "0.0625")
    qtbot.keyClick(panel.suggest_diff_edit, QtCore.Qt.Key_Return)
    qtbot.mouseClick(panel.suggest_diff_button, QtCore.Qt.LeftButton)   # unchanged: silent
    panel.suggest_diff_edit.clear()
    qtbot.mouseClick(panel.suggest_diff_button, QtCore.Qt.LeftButton)
    assert seen == [0.0625, None]
    assert panel.error_text("suggest_diff") == ""


def test_the_suggested_difficulty_set_in_the_editor_is_saved_and_sent_to_the_pool(
        qtbot, bridge, open_window, tmp_path: Path, monkeypatch) -> None:
    """Issue 16 defect 4: the user types a share difficulty into the pool editor while
    mining a real pool; mining restarts (confirmed), the restarted session sends
    mining.suggest_difficulty with that value (seen on the wire), and the value is in the
    settings file, from which the next start's MinerConfig carries it."""
    from sgm_gui import app as gui_app
    from tests.test_solo_pool_options import RecordingProxy

    pool = PoolThread(difficulty_bits=16, jobs=None, job_interval=60.0).start()
    proxy = RecordingProxy(pool.port).start()
    url = f"stratum+tcp://127.0.0.1:{proxy.port}"
    try:
        w = open_window(MinerConfig(threads=1, device_kinds=("cpu",),
                                    pools=[PoolConfig(url, "wallet.sd", "x")]))
        asked: list[str] = []
        monkeypatch.setattr(w, "confirm", lambda title, text, action: asked.append(text) or True)
        qtbot.waitUntil(lambda: any(m.get("method") == "mining.authorize"
                                    for m in proxy.lines()), timeout=30_000)
        assert not any(m.get("method") == "mining.suggest_difficulty" for m in proxy.lines())
        w.tabs.setCurrentWidget(w.pool_panel)
        qtbot.keyClicks(w.pool_panel.suggest_diff_edit, "0.0625")
        with qtbot.waitSignals([bridge.stopped, bridge.started], timeout=60_000):
            qtbot.mouseClick(w.pool_panel.suggest_diff_button, QtCore.Qt.LeftButton)
        assert asked and "0.0625" in asked[0]
        qtbot.waitUntil(lambda: any(m.get("method") == "mining.suggest_difficulty"
                                    for m in proxy.lines()), timeout=30_000)
        [suggest] = [m for m in proxy.lines() if m.get("method") == "mining.suggest_difficulty"]
        assert suggest["params"] == [0.0625]
        assert bridge.made[-1].config.suggest_difficulty == 0.0625
        saved = json.loads((tmp_path / "sgm.json").read_text())
        assert saved["suggest-diff"] == 0.0625
    finally:
        proxy.stop()
        pool.stop()
    settings, warnings = load_settings(tmp_path / "sgm.json")
    assert warnings == [] and settings.suggest_diff == 0.0625
    args = gui_app.build_parser().parse_args(["-c", str(tmp_path / "sgm.json")])
    assert gui_app.build_config(args, settings, tmp_path / "sgm.json", []) \
        .suggest_difficulty == 0.0625
