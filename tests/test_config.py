"""sgm/config.py: the config file's one schema, read strictly by `sgm -c FILE` (exit 2 naming
the key) and leniently by the desktop app (that key falls back, the rest is read), and the
one way its values reach the MinerConfig from both front ends."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from sgm import _native
from sgm.cli import main as sgm_main
from sgm.config import APP_KEYS, GUI_KEYS, KEYS, ConfigError, read_config
from sgm.miner import MinerConfig, PoolConfig
from sgm.miner_cli import _parser, build_config

ROOT = Path(__file__).resolve().parents[1]

#: (key, a bad value, words the message must hold): one row per key sgm checks
BAD_VALUES = [
    ("threads", "two", "must be a whole number in 1..1024, got a string ('two')"),
    ("threads", 0, "must be a whole number in 1..1024, got 0"),
    ("threads", 2.5, "whole number"),
    ("devices", "cpu,floppy", "floppy"),
    ("devices", 3, "must be a string like"),
    ("impl", "nope", "nope"),
    ("batch-time", 0, "must be a number in 0.001..60, got 0"),
    ("batch-time", 100, "0.001..60"),
    ("opencl-kernel-time", 5, "must be a number in 0.0005..1, got 5"),
    ("reserve-cpu-core", "yes", "must be true or false"),
    ("jobs", 0, "must be a whole number >= 1, got 0"),
    ("difficulty", 300, "must be a whole number in 1..255, got 300"),
    ("difficulty", True, "got a boolean (true)"),
    ("duration", -1, "must be a positive number, got -1"),
    ("no-version-rolling", 1, "must be true or false, got 1"),
    ("suggest-diff", "2", "must be a positive number, got a string ('2')"),
    ("suggest-diff", 10 ** 400, "must be a positive number"),
    ("suggest-diff", 0, "must be a positive number, got 0"),
    ("cert", "/nonexistent/ca.pem", "no such file"),
    ("no-verify", "yes", "must be true or false"),
    ("solo", 1, "must be true or false, got 1"),
    ("coinbase-addr", ["x"], "must be a string, got a list"),
    ("rpc-cookie", 5, "must be a string, got 5"),
    ("time-limit", 0, "must be a positive number, got 0"),
    ("summary-json", "", "must not be empty"),
    ("quiet", "no", "must be true or false"),
    ("verbose", 2, "must be true or false"),
    ("api-listen", "y", "must be true or false"),
    ("api-port", 70000, "must be a whole number in 0..65535, got 70000"),
    ("api-allow", "W:999.0.0.1", "999.0.0.1"),
    ("metrics-listen", "host:port", "the port must be a number"),
    ("log-file", [], "must be a string, got a list"),
    ("sharelog", {}, "must be a string, got an object"),
    ("pools", "stratum+tcp://h:1", "must be a list of pools, got a string"),
]


def write(tmp_path: Path, data: dict, name: str = "sgm.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)       # (a password in a file others can read is warned about)
    return path


def companion(key: str) -> tuple[str, int]:
    """A good key beside the bad one: the lenient reader must still read it."""
    return ("difficulty", 12) if key != "difficulty" else ("jobs", 4)


@pytest.mark.parametrize("key, value, words", BAD_VALUES)
def test_sgm_exits_2_naming_the_key_of_a_bad_value(tmp_path, capsys, key, value, words):
    good_key, good = companion(key)
    path = write(tmp_path, {good_key: good, key: value})
    assert sgm_main(["-c", str(path), "--time-limit", "3"]) == 2
    err = capsys.readouterr().err
    assert f"sgm: error: config file {path}: {key} " in err, err
    assert words in err, err


@pytest.mark.parametrize("key, value, words", [row for row in BAD_VALUES
                                               if KEYS[row[0]].scope == "miner"])
def test_the_app_reads_the_rest_and_names_the_key(key, value, words):
    """The lenient mode: the bad key falls back (absent from the values, listed as unread),
    its neighbour is read, and the problem says what is used instead."""
    good_key, good = companion(key)
    read = read_config({good_key: good, key: value}, "Settings file x", strict=False,
                       reader="app")
    assert key not in read.values and read.values[good_key] == good
    assert read.unread == {key}
    [problem] = read.problems
    assert problem.key == key and words in problem.message
    text = problem.text("Settings file x")
    assert text.startswith(f'Settings file x: "{key}" ') and KEYS[key].fallback in text


def test_a_pool_entry_is_checked_field_by_field(tmp_path, capsys):
    cases = [
        ({"user": "x"}, 'pools[0] needs a "url" string'),
        ({"url": "stratum+tcp://h:1", "pas": "secret"}, "pools[0] has unknown key(s) pas"),
        ({"url": "stratum+tcp://h:1", "user": 5}, 'pools[0] "user" must be a string, got 5'),
        ({"url": "http://h:80"}, "pools[0] (http://h:80): unsupported pool URL scheme"),
        ({"url": "stratum+tcp://h:1", "user": "a\tb"}, "control characters"),
    ]
    for entry, words in cases:
        path = write(tmp_path, {"pools": [entry]})
        assert sgm_main(["-c", str(path)]) == 2
        err = capsys.readouterr().err
        assert words in err, err
    # the app: the bad entry is skipped, the good ones kept in their order
    read = read_config({"pools": [{"url": "stratum+tcp://a:1", "user": "w"},
                                  {"url": "http://h:80"}, {"url": " stratum+tcp://b:2 "}]},
                       "f", strict=False, reader="app")
    assert [p.pool_config() for p in read.values["pools"]] == [
        PoolConfig("stratum+tcp://a:1", "w", "x"), PoolConfig("stratum+tcp://b:2", "", "x")]
    assert [p.key for p in read.problems] == ["pools[1]"] and read.unread == {"pools"}


def test_null_means_the_default_and_unknown_keys_are_named(tmp_path, capsys):
    path = write(tmp_path, {"threads": None, "suggest-diff": None, "devices": "cpu"})
    cfg, _ = build_config(_parser().parse_args(["-c", str(path)]))
    assert cfg.threads is None and cfg.suggest_difficulty is None
    path = write(tmp_path, {"thread": 2})
    assert sgm_main(["-c", str(path)]) == 2
    assert "unknown key(s) thread; known: " in capsys.readouterr().err
    read = read_config({"thread": 2, "threads": 2}, "f", strict=False, reader="app")
    assert read.values == {"threads": 2} and read.unread == {"thread"}


def test_sgm_does_not_check_the_apps_and_the_farms_keys(tmp_path):
    """"gui" is the window's, "rigs" the farm view's: sgm mines whatever they hold; the app
    checks each of its own fields."""
    path = write(tmp_path, {"gui": {"geometry": 5}, "rigs": "x", "devices": "cpu"})
    cfg, _ = build_config(_parser().parse_args(["-c", str(path)]))
    assert cfg.device_kinds == ("cpu",)
    read = read_config({"gui": {"geometry": 5, "close_to_tray": True}}, "f", strict=False,
                       reader="app")
    assert read.values["gui"] == {"close_to_tray": True}
    assert read.unread == {"gui.geometry"}


def test_flags_are_checked_as_the_files_values_are_naming_the_flag(capsys):
    for argv, words in ((["--difficulty", "300"], "--difficulty must be a whole number in 1..255"),
                        (["--batch-time", "100"], "--batch-time must be a number in 0.001..60"),
                        (["--devices", "cpu,floppy"], "--devices unknown device kind(s) floppy"),
                        (["--api-listen", "--metrics-listen", "h:x"], "--metrics-listen must be")):
        assert sgm_main(argv) == 2
        err = capsys.readouterr().err
        assert words in err, err


def test_the_contradiction_of_cert_and_no_verify_is_refused_by_sgm_and_resolved_by_the_app(
        tmp_path, capsys):
    ca = "/etc/ssl/certs/ca-certificates.crt"
    if not Path(ca).is_file():
        pytest.fail(f"{ca} is needed (apt-get install ca-certificates)", pytrace=False)
    path = write(tmp_path, {"cert": ca, "no-verify": True})
    assert sgm_main(["-c", str(path)]) == 2
    assert "contradict" in capsys.readouterr().err
    read = read_config({"cert": ca, "no-verify": True}, "f", strict=False, reader="app")
    assert read.values == {"cert": ca}                   # the safer of the two
    assert [p.key for p in read.problems] == ["no-verify"]


# ------------------------------------------------------------------ both front ends agree
def _both(path: Path, *flags: str) -> tuple[MinerConfig, MinerConfig]:
    """(sgm's MinerConfig, sgm-gui's MinerConfig) for `-c path` and the same flags."""
    from sgm_gui import app as gui_app
    from sgm_gui.settings import load_settings

    cli, _ = build_config(_parser().parse_args(["-c", str(path), *flags]))
    settings, warnings = load_settings(path)
    assert warnings == [] or all("--no-verify" in w for w in warnings), warnings
    args = gui_app.build_parser().parse_args(["-c", str(path), *flags])
    return cli, gui_app.build_config(args, settings, path, [])


def _ca_file(tmp_path: Path) -> str:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make a test certificate: "
                    "apt-get install openssl (scripts/setup.sh installs it)", pytrace=False)
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert)


def test_the_app_and_sgm_make_the_same_miner_config_from_one_file(tmp_path):
    """Issue 16 defect 4 / issue 13: every key both read (all of the miner's) reaches the
    MinerConfig the same way from `sgm -c FILE` and `sgm-gui -c FILE`, suggest-diff
    included; compared field by field."""
    impl = _native.default_implementation()
    full = {
        "pools": [{"url": "stratum+ssl://pool.example.com:443", "user": "wallet.a", "pass": "p"},
                  {"url": "stratum+tcp://backup.example.com:3333", "user": "wallet.b"}],
        "threads": 3, "devices": "cpu", "impl": impl, "batch-time": 0.05,
        "opencl-kernel-time": 0.01, "reserve-cpu-core": True, "jobs": 2, "difficulty": 12,
        "duration": 5, "no-version-rolling": True, "suggest-diff": 0.0625,
        "cert": _ca_file(tmp_path),
        # keys only sgm uses, and the window's own: beside the others, changing nothing
        "time-limit": 3, "quiet": True, "gui": {"close_to_tray": True},
    }
    miner_keys = {k for k in APP_KEYS if KEYS[k].target is not None}
    assert miner_keys - set(full) == {"no-verify"}   # (it contradicts cert: the next file)
    cli, app = _both(write(tmp_path, full))
    for f in dataclasses.fields(MinerConfig):
        assert getattr(app, f.name) == getattr(cli, f.name), f.name
    assert cli.suggest_difficulty == 0.0625 and cli.ssl_cafile == full["cert"]
    assert cli.local_jobs == 2 and not cli.version_rolling and cli.reserve_core_per_gpu
    assert [p.user for p in cli.pools] == ["wallet.a", "wallet.b"]

    insecure = {"pools": full["pools"], "no-verify": True, "suggest-diff": 512}
    cli, app = _both(write(tmp_path, insecure, "insecure.json"))
    assert dataclasses.asdict(app) == {**dataclasses.asdict(cli), "local_jobs": None}
    assert not cli.ssl_verify and cli.suggest_difficulty == 512.0
    # flags win over the file the same way in both
    cli, app = _both(write(tmp_path, full), "--suggest-diff", "3", "-t", "1")
    assert (cli.suggest_difficulty, cli.threads) == (app.suggest_difficulty, app.threads) \
        == (3.0, 1)


def test_sgm_gui_refuses_a_bad_suggest_diff_flag(tmp_path, capsys):
    from sgm_gui import app as gui_app

    assert gui_app.main(["-c", str(write(tmp_path, {})), "--suggest-diff", "0"]) == 2
    assert "--suggest-diff" in capsys.readouterr().err


def test_sgm_mines_with_every_miner_key_from_the_file(tmp_path):
    """A real run, `sgm -c FILE --time-limit 3`: the file's values drive it (one CPU
    thread, the kernel named, the embedded pool's share target, quiet, the summary file)."""
    impl = _native.available_implementations()[0]
    summary = tmp_path / "summary.json"
    path = write(tmp_path, {"threads": 1, "devices": "cpu", "impl": impl, "batch-time": 0.05,
                            "difficulty": 12, "duration": 30, "jobs": 5, "quiet": True,
                            "summary-json": str(summary), "suggest-diff": 4,
                            "gui": {"close_to_tray": True}})
    sgm = Path(sys.executable).with_name("sgm")
    r = subprocess.run([str(sgm), "-c", str(path), "--time-limit", "3"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "job " not in r.stdout                       # quiet: the final statistics only
    result = json.loads(summary.read_text())
    assert [(d["name"], d["impl"]) for d in result["devices"]] == [("cpu0", impl)]
    assert result["elapsed_s"] >= 3 and result["accepted"] > 0


def test_one_file_with_a_bad_value_stops_sgm_and_the_app_mines_the_rest(tmp_path):
    """Real processes: `sgm -c FILE --time-limit 3` exits 2 naming the key before any
    hashing; `sgm-gui -c FILE` says which key it could not read and mines with the rest
    of the file (one CPU thread, the file's share target)."""
    summary = tmp_path / "summary.json"
    path = write(tmp_path, {"threads": 1, "devices": "cpu", "difficulty": 12,
                            "suggest-diff": "high"})
    bin_dir = Path(sys.executable).parent
    r = subprocess.run([str(bin_dir / "sgm"), "-c", str(path), "--time-limit", "3"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert f"config file {path}: suggest-diff must be a positive number" in r.stderr

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    r = subprocess.run([str(bin_dir / "sgm-gui"), "-c", str(path), "--quit-after", "4",
                        "--summary-json", str(summary)], capture_output=True, text=True,
                       timeout=180, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert '"suggest-diff" must be a positive number' in r.stderr
    result = json.loads(summary.read_text())
    assert [d["name"] for d in result["devices"]] == ["cpu0"] and result["accepted"] > 0
    assert json.loads(path.read_text())["suggest-diff"] == "high"     # left as it was


# ------------------------------------------------------------------ the schema itself
def test_the_readme_documents_every_key():
    readme = (ROOT / "README.md").read_text()
    missing = [k for k in [*KEYS, *GUI_KEYS] if f"`{k}`" not in readme]
    assert missing == []


def test_every_key_has_a_meaning_and_sgm_has_its_flag():
    parser = _parser()
    dests = {a.dest for a in parser._actions}
    for key in KEYS.values():
        assert len(key.meaning) > 10 and key.fallback
        if key.flag is not None:
            assert key.flag in dests, key.name


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=3),
    max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(KEYS) + ["nope"]), json_values, max_size=6))
def test_the_lenient_reader_never_raises_and_keeps_only_good_values(content):
    read = read_config(content, "f", strict=False, reader="app")
    for key, value in read.values.items():
        if key not in ("pools", "gui"):
            assert KEYS[key].parse(content[key]) == value
    bad = {p.key.partition("[")[0] for p in read.problems}
    assert bad <= read.unread | {"no-verify"}
    try:
        strict = read_config(content, "f", strict=True, reader="app")
    except ConfigError as exc:
        assert exc.key is not None and exc.key.partition("[")[0] in read.unread | {"no-verify"}
    else:
        assert read.problems == [] and strict.values == read.values
