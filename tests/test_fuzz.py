"""What a pool sends cannot break the miner: arbitrary lines and arbitrary message shapes
fed to the protocol give events or clear errors (never an exception), and the session
still works afterwards; arbitrary notify params give a Job or a JobError, nothing else."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sgm.hashing import bits_to_target
from sgm.jobs import Job, JobError
from sgm.stratum.protocol import NewJob, ProtocolError, StratumProtocol

GOOD_NOTIFY = [
    "7", "9973803c689d114202d8fa6e7a812464ec5968614898bef00000000800000000",
    "02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff2503",
    "ffffffff0100000000000000000000000000", [], "20000000", "1929ee8d", "6422ca0e", True,
]
METHODS = ["mining.notify", "mining.set_difficulty", "mining.set_target", "mining.set_extranonce",
           "mining.set_version_mask", "client.reconnect", "client.show_message",
           "client.get_version", "mining.ping", "no.such.method"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=80) | st.sampled_from(["", "00", "zz", "1fffe000", "ffffffff", "0" * 64]),
    lambda inner: st.lists(inner, max_size=10) | st.dictionaries(st.text(max_size=10), inner,
                                                                  max_size=5),
    max_leaves=30)

messages = st.one_of(
    st.builds(lambda m, p, i: {"id": i, "method": m, "params": p},
              st.sampled_from(METHODS), json_values, st.none() | st.integers(0, 10)),
    st.builds(lambda i, r, e: {"id": i, "result": r, "error": e},
              st.none() | st.integers(0, 10), json_values, json_values),
    json_values,
)


def session() -> StratumProtocol:
    p = StratumProtocol("worker", "x")
    p.start()
    ids = {m["method"]: m["id"] for m in map(json.loads, p.data_to_send().decode().splitlines())}
    p.feed(json.dumps({"id": ids["mining.subscribe"], "error": None,
                       "result": [[["mining.notify", "x"]], "00000001", 4]}))
    return p


def still_works(p: StratumProtocol) -> None:
    """After whatever came before, a sane difficulty and job are still taken."""
    p.feed('{"id":null,"method":"mining.set_difficulty","params":[1]}')
    events = p.feed(json.dumps({"id": None, "method": "mining.notify", "params": GOOD_NOTIFY}))
    jobs = [e for e in events if isinstance(e, NewJob)]
    assert jobs and jobs[0].job.job_id == "7"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, max_size=8))
def test_arbitrary_messages_never_raise_and_the_session_survives(batch):
    p = session()
    for msg in batch:
        try:
            line = json.dumps(msg)
        except (ValueError, OverflowError):
            continue
        events = p.feed(line)
        assert isinstance(events, list)
    still_works(p)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_as_protocol_errors(raw):
    p = session()
    events = p.feed(raw)
    assert isinstance(events, list)
    try:
        json.loads(raw)
    except ValueError:  # not JSON at all: refused as a protocol error, nothing else
        assert [type(e) for e in events] == [ProtocolError]
    still_works(p)


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, max_size=11), st.integers(-5, 40), st.integers(-1, 2**257))
def test_arbitrary_notify_params_give_a_job_or_a_job_error(params, en2_size, target):
    try:
        job = Job.from_notify(params, extranonce1="00000001", extranonce2_size=en2_size,
                              target=target)
    except JobError:
        return
    # whatever was accepted is a usable job: its header is 80 bytes
    assert len(job.header(bytes(job.extranonce2_size))) == 80
    assert 1 <= job.target < 2**256


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 12).flatmap(lambda i: st.tuples(st.just(i), json_values)))
def test_one_corrupted_notify_field_is_refused_naming_a_field(case):
    index, value = case
    params = list(GOOD_NOTIFY)
    if index < len(params):
        params[index] = value
    try:
        Job.from_notify(params, extranonce1="00000001", extranonce2_size=4,
                        target=bits_to_target(20))
    except JobError as exc:
        assert str(exc)  # a message, naming what was wrong


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(
    st.sampled_from(sorted(__import__("sgm.miner_cli", fromlist=["CONFIG_KEYS"]).CONFIG_KEYS)
                    + ["unknown-key"]),
    json_values, max_size=6))
def test_any_config_file_gives_a_config_or_a_usage_error(tmp_path_factory, content):
    from sgm.cli import UsageError
    from sgm.miner_cli import _parser, build_config

    path = tmp_path_factory.mktemp("cfg") / "sgm.json"
    try:
        path.write_text(json.dumps(content))
    except (ValueError, OverflowError):
        return
    args = _parser().parse_args(["-c", str(path)])
    try:
        cfg, extras = build_config(args)
    except UsageError as exc:
        assert str(exc)
        return
    cfg.validate()  # what was accepted is a valid configuration
    assert cfg.local_jobs >= 1 and cfg.batch_time > 0 and cfg.device_kinds


# ---------------------------------------------------------------- the four parsers, a short pass
# (benchmarks/fuzz.py runs the same targets with 100,000 inputs each)

def _short_pass(name: str, examples: int = 300) -> None:
    from tests.fuzz_targets import targets

    target = next(t for t in targets() if t.name == name)

    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def fuzz(value):
        target.run(value)    # raises for anything but the parser's documented error

    fuzz()
    assert target.refused + target.accepted >= examples // 2
    assert target.refused > 0    # the inputs reach the parser's checks, not only its happy path


def test_stratum_lines_give_events_or_protocol_errors():
    _short_pass("stratum")


def test_getblocktemplate_results_give_a_template_or_a_template_error():
    _short_pass("template")


def test_config_files_give_a_config_or_a_usage_error():
    _short_pass("config", 200)


def test_cgminer_api_requests_always_get_a_reply():
    _short_pass("cgminer-api")


def test_a_config_file_that_is_not_utf8_is_a_usage_error(tmp_path):
    """Found by benchmarks/fuzz.py: the loader crashed with UnicodeDecodeError."""
    from sgm.cli import UsageError
    from sgm.miner_cli import _parser, build_config

    path = tmp_path / "sgm.json"
    path.write_bytes(b'{"threads": "\xff\xfe"}')
    with pytest.raises(UsageError, match="not UTF-8"):
        build_config(_parser().parse_args(["-c", str(path)]))
