"""gui/widgets/rigs_tab.py: the Rigs tab over three real mining sgm instances (their cgminer
API on 127.0.0.1), an address where nothing listens, a server that answers garbage and one
that accepts and never answers.

Each row is checked against that miner's own ``summary()``; the total against the sum of
the rows; the hanging rig against the GUI thread's pulse (the tab's timer and a fast test
timer keep firing, the good rig keeps updating); and the list of rigs against the config
file that ``sgm farm -c`` reads.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6 import QtCore

from sgm.miner import Miner, MinerConfig
from sgm.ops.cgminer_api import CgminerApi
from sgm_gui.models.device_table import format_rate
from sgm_gui.settings import GuiSettings, load_settings, save_settings
from sgm_gui.widgets.rigs_tab import (
    COL_5S,
    COL_ACC,
    COL_AV,
    COL_HW,
    COL_POOLS,
    COL_REJ,
    COL_RIG,
    COL_SEEN,
    COL_STALE,
    COL_STATE,
    COL_VERSION,
    RigsTab,
)
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
#: generous: three miners calibrating and mining on a loaded 2-core box
WAIT_S = 120.0
WAIT_MS = int(WAIT_S * 1000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]     # closed again: nothing listens there


class Server:
    """A TCP server on 127.0.0.1: ``reply`` bytes to every request, or (None) accept, read
    and never answer, holding the connection open."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.reply is None:
                self.held.append(conn)     # never answered, never closed (until close())
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(scope="module")
def miners():
    """Three sgm instances mining their embedded pools, each with its cgminer API."""
    made: list[tuple[Miner, CgminerApi]] = []
    try:
        for bits in (13, 14, 15):
            miner = Miner(MinerConfig(threads=1, device_kinds=("cpu",), local_jobs=None,
                                      local_difficulty_bits=bits, local_job_interval=120.0))
            api = CgminerApi(miner, port=0).start()
            made.append((miner, api))
            miner.start()
        # shares come before the first batch's hashes are counted: wait for both
        assert wait_until(lambda: all(m.summary()["accepted"] >= 1 and m.summary()["hashes"] > 0
                                      for m, _ in made), WAIT_S), "a miner found no share"
        yield made
    finally:
        for miner, api in made:
            miner.stop()
            api.stop()


@pytest.fixture
def make_tab(qtbot):
    tabs: list[RigsTab] = []

    def make(rigs: list[str], **kw) -> RigsTab:
        tab = RigsTab(rigs, **kw)
        qtbot.addWidget(tab)
        tab.resize(1300, 600)
        tab.show()
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.shutdown()


def updates_after(tab: RigsTab, qtbot, names: list[str], count: int) -> dict[str, list]:
    """The statuses each rig in ``names`` gets from now on, once each has ``count``."""
    seen: dict[str, list] = {n: [] for n in names}

    def on_update(status) -> None:
        if status.rig in seen:
            seen[status.rig].append(status)

    tab.rig_updated.connect(on_update)
    try:
        qtbot.waitUntil(lambda: all(len(v) >= count for v in seen.values()), timeout=WAIT_MS)
    finally:
        tab.rig_updated.disconnect(on_update)
    return seen


def test_each_row_is_its_miners_summary_and_the_bad_rigs_say_why(miners, make_tab, qtbot):
    dead = free_port()
    garbage = Server(b"HTTP/1.0 200 OK\r\n\r\nhello\x00")
    good = [f"127.0.0.1:{api.port}" for _, api in miners]
    names = [*good, f"127.0.0.1:{dead}", f"127.0.0.1:{garbage.port}"]
    try:
        # --- live: each rig's figures lie between its miner's summaries around the poll
        before = [m.summary() for m, _ in miners]
        tab = make_tab(names, interval_ms=300, timeout_s=10.0)
        assert tab.rigs() == names
        # asked at once, answered on the GUI thread later: the rows say so meanwhile
        assert tab.cell(0, COL_STATE) == "Asking…" and tab.cell(0, COL_SEEN) == "never"
        updates_after(tab, qtbot, names, 1)
        after = [m.summary() for m, _ in miners]
        for i, (miner, _api) in enumerate(miners):
            s = tab.status(good[i])
            assert s is not None and s.state == "ok" and s.error == ""
            assert s.version.startswith("sgm ")
            assert before[i]["accepted"] <= s.accepted <= after[i]["accepted"]
            assert s.accepted >= 1 and s.mhs_av > 0 and s.mhs_5s > 0
            assert s.hw_errors == after[i]["hw_errors"] == 0
            assert s.pools[0]["url"] == miner.local_pool.url and s.pools[0]["active"]

        # --- frozen: stopped miners keep their API and their counts; two polls later (the
        # second sent after the first came back, so wholly after the stop) every row is
        # exactly that miner's summary
        for miner, _api in miners:
            miner.stop()
        frozen = [m.summary() for m, _ in miners]
        updates_after(tab, qtbot, good, 2)
        later = [m.summary() for m, _ in miners]
        for i in range(len(miners)):
            s, f = tab.status(good[i]), frozen[i]
            assert s is not None and s.state == "ok"
            assert (s.accepted, s.rejected, s.stale, s.hw_errors) == (
                f["accepted"], f["rejected"], f["stale"], f["hw_errors"])
            assert s.mhs_av == f["hashrate"] / 1e6 == later[i]["hashrate"] / 1e6
            assert s.elapsed_s == int(f["elapsed_s"])
            # the 5 s average decays once hashing stopped: read between the two summaries
            assert later[i]["rates"]["5s"] / 1e6 <= s.mhs_5s <= f["rates"]["5s"] / 1e6
        tab.timer.stop()          # the table holds still for the comparisons below
        qtbot.waitUntil(lambda: not tab.in_flight(), timeout=WAIT_MS)

        # --- the table shows those statuses
        for row, name in enumerate(good):
            s = tab.status(name)
            assert tab.cell(row, COL_RIG) == name
            assert tab.cell(row, COL_STATE) == "OK"
            assert tab.cell(row, COL_VERSION) == s.version
            assert tab.cell(row, COL_5S) == format_rate(s.mhs_5s * 1e6)
            assert tab.cell(row, COL_AV) == format_rate(s.mhs_av * 1e6)
            assert tab.cell(row, COL_ACC) == f"{s.accepted:,}"
            assert tab.cell(row, COL_REJ) == f"{s.rejected:,}"
            assert tab.cell(row, COL_STALE) == f"{s.stale:,}"
            assert tab.cell(row, COL_HW) == "0"
            url = miners[row][0].local_pool.url
            assert tab.cell(row, COL_POOLS) == url.removeprefix("stratum+tcp://")
            assert url in tab.table.item(row, COL_POOLS).toolTip()
            assert tab.cell(row, COL_SEEN) != "never"

        # --- the unreachable rig: marked, with the reason, no figures, never seen
        row = names.index(f"127.0.0.1:{dead}")
        s = tab.status(names[row])
        assert s.state == "unreachable" and "refused" in s.error.lower()
        assert tab.cell(row, COL_STATE) == f"Unreachable — {s.error}"
        assert tab.cell(row, COL_ACC) == "—" and tab.cell(row, COL_SEEN) == "never"
        # --- the rig that answers garbage: malformed, and why
        row = names.index(f"127.0.0.1:{garbage.port}")
        s = tab.status(names[row])
        assert s.state == "malformed" and "not JSON" in s.error
        assert tab.cell(row, COL_STATE).startswith("Malformed — ")

        # --- the total row: the sums over the three that answered
        total_row = len(names)
        statuses = [tab.status(n) for n in good]
        assert tab.cell(total_row, COL_RIG) == "Total"
        assert tab.cell(total_row, COL_STATE) == "3 of 5 answering"
        assert tab.cell(total_row, COL_ACC) == f"{sum(s.accepted for s in statuses):,}"
        assert tab.cell(total_row, COL_REJ) == f"{sum(s.rejected for s in statuses):,}"
        assert tab.cell(total_row, COL_STALE) == f"{sum(s.stale for s in statuses):,}"
        assert tab.cell(total_row, COL_HW) == "0"
        assert tab.total()["accepted"] == sum(f["accepted"] for f in frozen)
        mhs_av = sum(s.mhs_av for s in statuses)
        assert tab.total()["mhs_av"] == pytest.approx(mhs_av)
        assert tab.cell(total_row, COL_AV) == format_rate(tab.total()["mhs_av"] * 1e6)
        assert tab.cell(total_row, COL_5S) == format_rate(tab.total()["mhs_5s"] * 1e6)

        # --- the plot: one sample per tick of the farm's 5 s total
        assert len(tab.history) >= 2
        tab.record_total()
        _t, y = tab.history.view()
        assert y[-1] == tab.total()["mhs_5s"] * 1e6 > 0
        assert list(tab.curve.yData)[-1] == y[-1]
        assert not tab.placeholder.isVisible()
    finally:
        garbage.close()


def test_a_hanging_rig_blocks_neither_the_window_nor_the_other_rigs(miners, make_tab, qtbot):
    hang = Server(None)             # accepts, reads, never answers
    good = f"127.0.0.1:{miners[0][1].port}"
    stuck = f"127.0.0.1:{hang.port}"
    pulses = 0

    def pulse() -> None:
        nonlocal pulses
        pulses += 1

    beat = QtCore.QTimer()
    beat.timeout.connect(pulse)
    beat.start(20)
    try:
        tab = make_tab([good, stuck], interval_ms=200, timeout_s=3.0)
        assert stuck in tab.in_flight()      # asked at once, on the poller's thread
        start_ticks, start_pulses = tab.ticks, pulses
        good_while_stuck: list = []
        first: dict = {}

        def on_update(status) -> None:
            if status.rig == good and "stuck" not in first:
                good_while_stuck.append(status)
            elif status.rig == stuck and "stuck" not in first:
                # no new poll of the stuck rig can be out yet (this slot runs first)
                first.update(stuck=status, accepted=hang.accepted, ticks=tab.ticks,
                             pulses=pulses)

        tab.rig_updated.connect(on_update)
        qtbot.waitUntil(lambda: "stuck" in first, timeout=WAIT_MS)
        s = first["stuck"]
        assert s.state == "unreachable" and s.error == "no answer within 3 s"
        # while it hung (3 s): the tab's timer and the fast test timer kept firing, the good
        # rig answered poll after poll, and the stuck rig was asked only once (its summary,
        # pools and version: three connections), never twice at a time
        assert first["ticks"] - start_ticks >= 3
        assert first["pulses"] - start_pulses >= 10
        assert len(good_while_stuck) >= 3 and all(u.state == "ok" for u in good_while_stuck)
        assert first["accepted"] == 3
        row = tab.rigs().index(stuck)
        assert tab.cell(row, COL_STATE) == "Unreachable — no answer within 3 s"
        assert tab.cell(len(tab.rigs()), COL_STATE) == "1 of 2 answering"
    finally:
        beat.stop()
        hang.close()


def test_rigs_are_added_removed_and_saved_where_sgm_farm_reads_them(
        miners, open_window, tmp_path, qtbot):
    dead = free_port()
    api_rig = f"127.0.0.1:{miners[1][1].port}"
    path = tmp_path / "sgm.json"      # the window fixture's settings file
    path.write_text(json.dumps({"difficulty": 12, "rigs": [f"127.0.0.1:{dead}", "h:99999"]}))
    settings, warnings = load_settings(path)
    assert settings.rigs == [f"127.0.0.1:{dead}"] and "rigs" in settings.unread
    assert any("rigs[1]" in w and "out of range" in w for w in warnings)
    window = open_window(MinerConfig(threads=1), settings=settings, warnings=warnings,
                         start=False)
    tab = window.rigs_tab
    window.tabs.setCurrentWidget(tab)
    assert tab.rigs() == [f"127.0.0.1:{dead}"]

    # a bad address: the parser's words under the field, nothing saved
    tab.address.setText("rig7:0")
    qtbot.mouseClick(tab.add_button, QtCore.Qt.MouseButton.LeftButton)
    assert tab.error_label.isVisible() and "out of range" in tab.error_label.text()
    assert json.loads(path.read_text())["rigs"] == [f"127.0.0.1:{dead}", "h:99999"]

    # a good one (Enter in the field): saved, the file's other keys kept
    tab.address.setText(api_rig)
    qtbot.keyClick(tab.address, QtCore.Qt.Key.Key_Return)
    assert not tab.error_label.isVisible() and tab.address.text() == ""
    data = json.loads(path.read_text())
    assert data["rigs"] == [f"127.0.0.1:{dead}", api_rig] and data["difficulty"] == 12
    tab.address.setText(api_rig)
    assert not tab.add_from_form() and "already" in tab.error_label.text()

    # remove the dead one: select its row, Remove
    tab.table.selectRow(0)
    assert tab.remove_button.isEnabled()
    qtbot.mouseClick(tab.remove_button, QtCore.Qt.MouseButton.LeftButton)
    assert tab.rigs() == [api_rig]
    assert json.loads(path.read_text())["rigs"] == [api_rig]
    qtbot.waitUntil(lambda: (tab.status(api_rig) or None) is not None
                    and tab.status(api_rig).state == "ok", timeout=WAIT_MS)

    # the same file is what `sgm farm -c` watches
    r = subprocess.run([sys.executable, "-m", "sgm", "farm", "-c", str(path), "--once",
                        "--json", "--timeout", "10"], capture_output=True, text=True,
                       timeout=WAIT_S, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert [row["rig"] for row in json.loads(r.stdout)["rigs"]] == [api_rig]

    # closing the window ends the poller's thread
    with qtbot.waitSignal(window.closed, timeout=30_000):
        window.request_quit()
    assert not any(t.name == "gui-rigs-poller" and t.is_alive() for t in threading.enumerate())


def test_a_file_whose_rigs_cannot_be_read_keeps_them_until_the_user_edits_them(tmp_path):
    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"rigs": "127.0.0.1:4028", "threads": 2}))
    settings, warnings = load_settings(path)
    assert settings.rigs == [] and "rigs" in settings.unread
    assert any('"rigs" must be a list' in w for w in warnings)
    settings.threads = 3                 # another setting changes: the rigs stay as written
    settings.unread.discard("threads")
    save_settings(path, settings)
    assert json.loads(path.read_text())["rigs"] == "127.0.0.1:4028"
    # a file without rigs gets no "rigs" key from a save
    other = tmp_path / "other.json"
    save_settings(other, GuiSettings(threads=1))
    assert "rigs" not in json.loads(other.read_text())
    # addresses are kept in the HOST:PORT form sgm farm reads (port 4028 when left out)
    other.write_text(json.dumps({"rigs": ["10.1.2.3", "rig7:4029", "rig7:4029"]}))
    settings, warnings = load_settings(other)
    assert settings.rigs == ["10.1.2.3:4028", "rig7:4029"] and not warnings
