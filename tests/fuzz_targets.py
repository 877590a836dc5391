"""Fuzz targets shared by the suite's short pass (tests/test_fuzz.py) and the long run
(benchmarks/fuzz.py): for each parser, a hypothesis strategy of inputs and a check that
feeds one input and lets only the parser's documented error type through.

A target's check raises ``AssertionError`` (or any other exception) for a crash; the
documented errors are caught inside it and counted as refusals.
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from sgm.stratum.messages import StratumError, decode_line
from sgm.stratum.protocol import ProtocolError, StratumProtocol

DATA = Path(__file__).parent / "data"

#: JSON-shaped values, with the odd strings pools and nodes send
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=80)
    | st.sampled_from(["", "00", "zz", "1fffe000", "ffffffff", "0" * 64, "f" * 64, "-1"]),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=5),
    max_leaves=25)


@dataclass
class Target:
    """One parser under fuzz: ``strategy`` draws an input, ``check`` feeds it."""

    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]
    #: inputs refused with the documented error (the rest were accepted)
    refused: int = 0
    accepted: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def run(self, value: Any) -> None:
        if self.check(value):
            self.refused += 1
        else:
            self.accepted += 1


# ----------------------------------------------------------------- Stratum (messages, feed)

STRATUM_METHODS = ["mining.notify", "mining.set_difficulty", "mining.set_target",
                   "mining.set_extranonce", "mining.set_version_mask", "client.reconnect",
                   "client.show_message", "client.get_version", "mining.ping", "no.such.method"]


def _stratum_session() -> tuple[StratumProtocol, dict[str, int]]:
    p = StratumProtocol("worker", "x")
    p.start()
    ids = {m["method"]: m["id"] for m in map(json.loads, p.data_to_send().decode().splitlines())}
    p.feed(json.dumps({"id": ids["mining.subscribe"], "error": None,
                       "result": [[["mining.notify", "x"]], "00000001", 4]}))
    return p, ids


def _line(msg: Any) -> bytes:
    try:
        return json.dumps(msg).encode()
    except (ValueError, OverflowError):
        return b"{}"


stratum_lines = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.builds(lambda m, p, i: _line({"id": i, "method": m, "params": p}),
              st.sampled_from(STRATUM_METHODS), json_values, st.none() | st.integers(0, 10)),
    st.builds(lambda i, r, e: _line({"id": i, "result": r, "error": e}),
              st.none() | st.integers(0, 10) | json_values, json_values, json_values),
)


def check_stratum(lines: list[bytes]) -> bool:
    """decode_line raises StratumError only; feed never raises and returns events (a
    ProtocolError event for what it refuses)."""
    p, _ = _stratum_session()
    refused = False
    for raw in lines:
        try:
            decode_line(raw)
        except StratumError:
            refused = True
        events = p.feed(raw)
        assert isinstance(events, list)
        refused = refused or any(isinstance(e, ProtocolError) for e in events)
    return refused


# ----------------------------------------------------------------- getblocktemplate

def _templates() -> list[dict[str, Any]]:
    out = []
    for name in ("core_regtest_template.json", "btcd_simnet_template.json",
                 "btcd_regtest_empty.json"):
        data = json.loads((DATA / "solo" / name).read_text())
        # a recording may wrap the template (with getblockchaininfo beside it)
        for key in ("template", "result", "getblocktemplate"):
            if isinstance(data, dict) and isinstance(data.get(key), dict):
                data = data[key]
        out.append(data)
    return out


TEMPLATES = _templates()
TEMPLATE_KEYS = sorted({k for t in TEMPLATES for k in t} | {"default_witness_commitment",
                                                            "coinbasetxn", "nonexistent"})


def _mutate_template(base: int, edits: list[tuple[str, Any]], tx_edits: list[tuple[int, str, Any]]
                     ) -> Any:
    tmpl = copy.deepcopy(TEMPLATES[base % len(TEMPLATES)])
    for key, value in edits:
        if value is _DELETE:
            tmpl.pop(key, None)
        else:
            tmpl[key] = value
    txs = tmpl.get("transactions")
    if isinstance(txs, list) and txs:
        for i, key, value in tx_edits:
            tx = txs[i % len(txs)]
            if isinstance(tx, dict):
                tx[key] = value
    return tmpl


_DELETE = object()
template_inputs = st.one_of(
    json_values,
    st.builds(_mutate_template, st.integers(0, 2),
              st.lists(st.tuples(st.sampled_from(TEMPLATE_KEYS), json_values | st.just(_DELETE)),
                       max_size=4),
              st.lists(st.tuples(st.integers(0, 50),
                                 st.sampled_from(["data", "txid", "hash", "fee", "weight",
                                                  "depends", "sigops"]), json_values),
                       max_size=3)),
)


def check_template(tmpl: Any) -> bool:
    from sgm.solo.template import TemplateError, parse_template
    try:
        parse_template(tmpl)
    except TemplateError as exc:
        assert str(exc)
        return True
    return False


# ----------------------------------------------------------------- the config file

def _config_keys() -> list[str]:
    from sgm.miner_cli import CONFIG_KEYS
    return sorted(CONFIG_KEYS)


config_inputs = st.one_of(
    st.dictionaries(st.sampled_from(_config_keys() + ["unknown-key"]), json_values,
                    max_size=6).map(_line),
    st.binary(max_size=200),
)

_CFG_DIR = Path(tempfile.mkdtemp(prefix="sgm-fuzz-cfg-"))


def check_config(raw: bytes) -> bool:
    """The config file goes through the same loader as `sgm -c`: a config or a UsageError."""
    from sgm.cli import UsageError
    from sgm.miner_cli import _parser, build_config
    path = _CFG_DIR / "sgm.json"
    path.write_bytes(raw)
    args: argparse.Namespace = _parser().parse_args(["-c", str(path)])
    try:
        cfg, _extras = build_config(args)
    except UsageError as exc:
        assert str(exc)
        return True
    cfg.validate()      # what was accepted is a valid configuration
    return False


# ----------------------------------------------------------------- the cgminer API request

API_COMMANDS = ["version", "config", "summary", "devs", "pools", "stats", "devdetails", "coin",
                "switchpool", "enablepool", "disablepool", "addpool", "removepool",
                "poolpriority", "ascenable", "ascdisable", "pgaenable", "pgadisable",
                "cpuenable", "cpudisable", "gpuenable", "gpudisable", "quit", "restart",
                "zero", "summary+devs", "pools+pools", "save", "nosuch"]


def _api_request(kind: int, command: str, param: Any, junk: bytes) -> bytes:
    if kind == 0:
        return f"{command}|{param}".encode("utf-8", "surrogatepass") if isinstance(param, str) \
            else command.encode()
    if kind == 1:
        return _line({"command": command, "parameter": param})
    if kind == 2:
        return _line(param)
    return junk


api_inputs = st.tuples(
    st.builds(_api_request, st.integers(0, 3),
              st.sampled_from(API_COMMANDS) | st.text(max_size=20),
              json_values | st.text(max_size=60), st.binary(max_size=200)),
    st.booleans())


class _Api:
    """One CgminerApi over a Miner that is built but never started (nothing is mined)."""

    api: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls.api is None:
            from sgm.miner import Miner, MinerConfig, PoolConfig
            from sgm.ops.cgminer_api import CgminerApi
            miner = Miner(MinerConfig(pools=[PoolConfig("stratum+tcp://127.0.0.1:1", "w", "x")],
                                      threads=1, device_kinds=("cpu",)))
            cls.api = CgminerApi(miner, port=0, allow="W:127.0.0.1")
        return cls.api


def check_api(case: tuple[bytes, bool]) -> bool:
    """handle_request answers every request with a reply (an error status for what it
    refuses) and never raises.  "save" runs unprivileged only (it writes a file)."""
    data, privileged = case
    if b"save" in data:
        privileged = False
    text, _after = _Api.get().handle_request(data, privileged)   # _after: quit/restart, not run
    assert isinstance(text, str) and text
    return '"STATUS": "E"' in text or "STATUS=E" in text or '"STATUS":"E"' in text


def targets() -> list[Target]:
    return [
        Target("stratum", st.lists(stratum_lines, min_size=1, max_size=4), check_stratum),
        Target("template", template_inputs, check_template),
        Target("config", config_inputs, check_config),
        Target("cgminer-api", api_inputs, check_api),
    ]
