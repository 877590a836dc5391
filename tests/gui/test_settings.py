"""gui/settings.py: the app's settings in the CLI's own config file.

Round trip, per-field fallback with a warning, malformed files left alone, the CLI reading
what the app wrote (parser + build_config, and one short real `sgm -c` run), foreign keys
kept, the .bak being the previous file.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sgm.miner import PoolConfig
from sgm.miner_cli import _parser, build_config
from sgm_gui.settings import (GuiSettings, UnreadableSettingsFile, default_config_path,
                              load_settings, save_settings, validate_pool)

GOOD = GuiSettings(
    pools=[PoolConfig("stratum+tcp://pool.example.com:3333", "wallet.rig1", "secret"),
           PoolConfig("stratum+ssl://backup.example.org:443", "wallet.rig1", "x")],
    threads=2, devices="cpu", disabled_devices=["cpu0", "opencl1"],
    geometry="AdnQywADAAAAAAAA", close_to_tray=True,
)


def test_default_path_is_in_the_user_config_dir() -> None:
    path = default_config_path()
    assert path.name == "sgm.json"
    assert path.parent.name == "sgm"


def test_round_trip_reads_back_what_was_saved(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "sgm.json"          # the folder is created on first save
    save_settings(path, GOOD)
    loaded, warnings = load_settings(path)        # as on the next start
    assert warnings == []
    assert loaded == GOOD
    # the file holds passwords: not readable by others when the app creates it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # nothing left behind by the atomic write
    assert sorted(p.name for p in path.parent.iterdir()) == ["sgm.json"]


def test_missing_file_gives_defaults_without_warnings(tmp_path: Path) -> None:
    settings, warnings = load_settings(tmp_path / "absent.json")
    assert settings == GuiSettings() and warnings == []


def test_wrong_type_in_one_field_loads_the_rest_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    text = json.dumps({
        "pools": [{"url": "stratum+tcp://pool.example.com:3333", "user": "w.1", "pass": "p"}],
        "threads": "four",
        "devices": "cpu",
        "gui": {"disabled_devices": ["cpu0"], "close_to_tray": True, "geometry": "AAAA"},
    })
    path.write_text(text)
    os.chmod(path, 0o600)           # (a password in a file others can read is warned about)
    settings, warnings = load_settings(path)
    assert settings.threads is None                       # that field fell back ...
    assert settings.pools == [PoolConfig("stratum+tcp://pool.example.com:3333", "w.1", "p")]
    assert settings.devices == "cpu"                      # ... every other field loaded
    assert settings.disabled_devices == ["cpu0"]
    assert settings.close_to_tray is True
    assert settings.geometry == "AAAA"
    assert len(warnings) == 1
    assert '"threads"' in warnings[0] and "string" in warnings[0] and str(path) in warnings[0]
    assert path.read_text() == text                       # loading never rewrites


@pytest.mark.parametrize("gui, field_name", [
    ({"close_to_tray": "yes"}, "gui.close_to_tray"),
    ({"disabled_devices": "cpu0"}, "gui.disabled_devices"),
    ({"geometry": "not base64!"}, "gui.geometry"),
])
def test_each_gui_field_falls_back_alone(tmp_path: Path, gui: dict, field_name: str) -> None:
    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"threads": 3, "gui": gui}))
    settings, warnings = load_settings(path)
    assert settings.threads == 3
    assert len(warnings) == 1 and f'"{field_name}"' in warnings[0]


def test_bad_values_of_the_right_type_are_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"threads": 0, "devices": "cpu,floppy", "close_to_tray": 1,
                                "pools": [{"url": "stratum+tcp://good.example:1", "user": "u"},
                                          {"url": "http://pool.example:80", "user": "u"},
                                          {"url": "stratum+tcp://nouser.example:2", "user": ""},
                                          "junk"]}))
    settings, warnings = load_settings(path)
    assert settings.threads is None and settings.devices is None
    # a pool without a user is what `sgm -c` mines too (the form asks for one, a file may not)
    assert settings.pools == [PoolConfig("stratum+tcp://good.example:1", "u", "x"),
                              PoolConfig("stratum+tcp://nouser.example:2", "", "x")]
    text = "\n".join(warnings)
    assert '"threads"' in text and "1..1024" in text
    assert '"devices"' in text and "floppy" in text
    assert '"pools[1]"' in text and "scheme" in text
    assert '"pools[3]"' in text
    assert '"close_to_tray"' in text and "not a key" in text   # it belongs under "gui"
    assert len(warnings) == 5
    assert settings.unread == {"threads", "devices", "pools", "close_to_tray"}


@pytest.mark.parametrize("text", ['{"pools": [', "[1, 2]", "", "\xff\xfe"])
def test_malformed_file_gives_defaults_and_is_left_untouched(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sgm.json"
    path.write_bytes(text.encode("latin-1"))
    before = path.read_bytes()
    settings, warnings = load_settings(path)
    assert settings == GuiSettings()
    assert len(warnings) == 1 and str(path) in warnings[0] and "left as it is" in warnings[0]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sgm.json"]


def test_saving_over_a_malformed_file_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    path.write_text('{"pools": [')
    with pytest.raises(UnreadableSettingsFile):   # never replaced without the user's consent
        save_settings(path, GOOD)
    assert path.read_bytes() == b'{"pools": ['
    assert not (tmp_path / "sgm.json.bak").exists()
    save_settings(path, GOOD, replace_unreadable=True)
    assert load_settings(path) == (GOOD, [])
    assert (tmp_path / "sgm.json.bak").read_text() == '{"pools": ['
    assert (tmp_path / "sgm.json.invalid").read_text() == '{"pools": ['
    save_settings(path, GuiSettings())        # a second save: the broken original still kept
    assert (tmp_path / "sgm.json.invalid").read_text() == '{"pools": ['


def test_keys_the_app_does_not_own_survive_a_save(tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"difficulty": 12, "jobs": 5, "impl": "scalar", "threads": 7,
                                "gui": {"future_option": [1, 2], "close_to_tray": False}}))
    save_settings(path, GuiSettings(threads=None, close_to_tray=True))
    data = json.loads(path.read_text())
    assert data["difficulty"] == 12 and data["jobs"] == 5 and data["impl"] == "scalar"
    assert "threads" not in data                  # None: the CLI's default again
    assert data["gui"]["future_option"] == [1, 2]
    assert data["gui"]["close_to_tray"] is True
    assert data["pools"] == []


def test_bak_is_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    first = GuiSettings(threads=1)
    second = GuiSettings(threads=2)
    save_settings(path, first)
    assert not (tmp_path / "sgm.json.bak").exists()
    first_text = path.read_text()
    save_settings(path, second)
    assert (tmp_path / "sgm.json.bak").read_text() == first_text
    assert load_settings(tmp_path / "sgm.json.bak")[0].threads == 1
    assert load_settings(path)[0].threads == 2


def test_mode_of_an_existing_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    no_secret = GuiSettings(pools=[PoolConfig("stratum+tcp://pool.example.com:3333", "w", "x")])
    save_settings(path, no_secret)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_file_others_can_read_that_holds_passwords_is_warned_and_tightened(
        tmp_path: Path, caplog) -> None:
    """A hand-written 0644 file with a pool password: a warning at load naming the mode,
    and the next save writes it 0600 and says so in the log."""
    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"pools": [{"url": "stratum+tcp://pool.example.com:3333",
                                           "user": "w", "pass": "hunter2"}]}))
    os.chmod(path, 0o644)
    settings, warnings = load_settings(path)
    assert len(warnings) == 1 and "0644" in warnings[0] and "passwords" in warnings[0]
    with caplog.at_level(logging.WARNING, logger="sgm.gui.settings"):
        save_settings(path, settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert any("readable by you only" in r.getMessage() for r in caplog.records)
    os.chmod(path, 0o600)
    assert load_settings(path)[1] == []


def test_a_value_that_could_not_be_read_stays_in_the_file_until_the_user_changes_it(
        tmp_path: Path) -> None:
    """"threads": "two" survives saves of other settings, byte for byte in its place; a bad
    pool entry too; once the user sets threads the new value is written."""
    path = tmp_path / "sgm.json"
    bad_pool = {"url": "stratum+tcp//bad", "user": "w", "pass": "x"}
    path.write_text(json.dumps({"threads": "two", "pools": [
        {"url": "stratum+tcp://pool.example.com:3333", "user": "w", "pass": "x"}, bad_pool],
        "gui": {"geometry": 5}}))
    settings, warnings = load_settings(path)
    assert settings.unread == {"threads", "pools", "gui.geometry"} and len(warnings) == 3
    settings.disabled_devices = ["cpu1"]             # one device toggle
    save_settings(path, settings)
    data = json.loads(path.read_text())
    assert data["threads"] == "two" and data["pools"][1] == bad_pool
    assert data["gui"]["geometry"] == 5 and data["gui"]["disabled_devices"] == ["cpu1"]
    save_settings(path, settings)                   # and the save after (.bak is no refuge)
    assert json.loads(path.read_text())["threads"] == "two"
    settings.threads = 3
    settings.unread.discard("threads")              # the user set threads in the app
    save_settings(path, settings)
    assert json.loads(path.read_text())["threads"] == 3


def test_a_failed_write_leaves_the_file_alone(tmp_path: Path, monkeypatch) -> None:
    """A disk that fills up mid-save: the old file stays whole, no temp file is left."""
    path = tmp_path / "sgm.json"
    save_settings(path, GOOD)
    before = path.read_text()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_settings(path, GuiSettings())
    monkeypatch.undo()
    assert path.read_text() == before
    assert load_settings(path) == (GOOD, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sgm.json"]


def test_settings_the_cli_would_reject_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    with pytest.raises(ValueError, match="threads"):
        save_settings(path, GuiSettings(threads=0))
    with pytest.raises(ValueError, match="pool 1"):
        save_settings(path, GuiSettings(pools=[PoolConfig("nohost", "u", "x")]))
    assert not path.exists()


def test_the_cli_parser_accepts_what_the_app_wrote(tmp_path: Path) -> None:
    path = tmp_path / "sgm.json"
    save_settings(path, GOOD)
    cfg, extras = build_config(_parser().parse_args(["-c", str(path)]))
    assert cfg.pools == GOOD.pools
    assert cfg.threads == 2
    assert cfg.device_kinds == ("cpu",)
    assert extras["warnings"] == []


def test_sgm_mines_with_the_file_the_app_wrote(tmp_path: Path) -> None:
    """A real `sgm -c FILE` run: the embedded pool (pools = []), one thread, a short job."""
    path = tmp_path / "sgm.json"
    save_settings(path, GuiSettings(threads=1, devices="cpu", close_to_tray=True,
                                    disabled_devices=["opencl0"]))
    summary = tmp_path / "summary.json"
    sgm = Path(sys.executable).with_name("sgm")
    proc = subprocess.run(
        [str(sgm), "-c", str(path), "--jobs", "1", "--duration", "1", "--difficulty", "8",
         "-q", "--summary-json", str(summary)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(summary.read_text())
    assert result["accepted"] > 0
    assert [d["kind"] for d in result["devices"]] == ["cpu"]


@pytest.mark.parametrize("url, user, password, fields", [
    ("stratum+tcp://pool.example.com:3333", "w.1", "x", set()),
    ("pool.example.com:3333", "w.1", "", set()),            # bare host:port is stratum+tcp
    ("", "w.1", "x", {"url"}),
    ("stratum+tcp://pool.example.com", "w.1", "x", {"url"}),    # no port
    ("http://pool.example.com:80", "w.1", "x", {"url"}),        # wrong scheme
    ("stratum+tcp://pool.example.com:99999", "w.1", "x", {"url"}),
    ("stratum+tcp://pool.example.com:3333", "", "x", {"user"}),
    ("stratum+tcp://pool.example.com:3333", "   ", "x", {"user"}),
    ("stratum+tcp://pool.example.com:3333", "w.1", "a\nb", {"password"}),
    ("nonsense", "", "x", {"url", "user"}),
])
def test_validate_pool(url: str, user: str, password: str, fields: set[str]) -> None:
    errors = validate_pool(url, user, password)
    assert set(errors) == fields
    assert all(isinstance(m, str) and len(m) > 10 for m in errors.values())


def test_suggest_diff_round_trips_and_a_bad_one_stays_in_the_file_until_set(
        tmp_path: Path) -> None:
    """The app owns suggest-diff now (issue 16 defect 4): saved and read back; a value it
    could not read ("high") survives saves of other settings (issue 14 defect 5) until the
    user sets one, and `sgm -c` reads what the app wrote."""
    path = tmp_path / "sgm.json"
    save_settings(path, GuiSettings(suggest_diff=0.5))
    assert json.loads(path.read_text())["suggest-diff"] == 0.5
    assert load_settings(path)[0].suggest_diff == 0.5
    cfg, _ = build_config(_parser().parse_args(["-c", str(path)]))
    assert cfg.suggest_difficulty == 0.5

    path.write_text(json.dumps({"suggest-diff": "high", "threads": 2}))
    os.chmod(path, 0o600)
    settings, warnings = load_settings(path)
    assert settings.suggest_diff is None and settings.threads == 2
    assert settings.unread == {"suggest-diff"}
    assert len(warnings) == 1 and '"suggest-diff"' in warnings[0] \
        and "the pool chooses" in warnings[0]
    settings.disabled_devices = ["cpu0"]                  # a device toggle
    save_settings(path, settings)
    assert json.loads(path.read_text())["suggest-diff"] == "high"
    settings.suggest_diff = 8.0
    settings.unread.discard("suggest-diff")               # the user set it in the app
    save_settings(path, settings)
    assert json.loads(path.read_text())["suggest-diff"] == 8.0
    with pytest.raises(ValueError, match="suggest-diff"):
        save_settings(path, GuiSettings(suggest_diff=-1.0))


def test_every_miner_key_the_app_does_not_edit_survives_a_save(tmp_path: Path) -> None:
    """impl, batch-time, no-version-rolling ...: read by the app for the miner, written
    back exactly as they were."""
    path = tmp_path / "sgm.json"
    original = {"impl": "scalar", "batch-time": 0.2, "no-version-rolling": True, "jobs": 4,
                "api-listen": True, "rigs": ["10.0.0.2:4028"]}
    path.write_text(json.dumps(original))
    settings, warnings = load_settings(path)
    assert warnings == []
    assert settings.file_values["batch-time"] == 0.2 and settings.file_values["jobs"] == 4
    settings.close_to_tray = True
    save_settings(path, settings)
    data = json.loads(path.read_text())
    assert {k: data[k] for k in original} == original
