"""Stratum v1: message codec, the socket-free protocol, and the asyncio client against the
embedded LocalPool over real sockets."""
import asyncio
import contextlib
import json
import re
import shutil
import socket
import ssl
import subprocess
from dataclasses import replace

import pytest

from sgm import _native
from sgm.hashing import DIFF1, difficulty_to_target
from sgm.jobs import Job, MidstateCache, Share, make_share
from sgm.pool import LocalPool
from sgm.stratum.client import NO_ANSWER, StratumClient, Verdict, parse_pool_url
from sgm.stratum.messages import (
    MAX_LINE_BYTES,
    Request,
    Response,
    StratumError,
    decode_line,
    encode_request,
    encode_response,
    parse_error,
)
from sgm.stratum.protocol import (
    MAX_PENDING_REQUESTS,
    Authorized,
    Connected,
    DifficultyChanged,
    Disconnected,
    ExtranonceChanged,
    NewJob,
    ProtocolError,
    Reconnect,
    ServerMessage,
    StratumProtocol,
    SubmitResult,
    Subscribed,
    VersionMaskChanged,
    VersionRollingConfigured,
)
from tests.conftest import vectors_dir  # noqa: E402

VECTORS = json.loads((vectors_dir() / "stratum_shares.json").read_text())
PROTOCOL_MESSAGES = [m for group in VECTORS["protocol_messages"] for m in group["messages"]]
NOTIFY = ["job1", bytes(range(32)).hex(), "01000000", "ffffffff", ["22" * 32], "20000000", "1d00ffff",
          "65000000", True]


# ----------------------------------------------------------------------------- messages
def test_every_recorded_protocol_message_decodes():
    assert len(PROTOCOL_MESSAGES) >= 10
    for line in PROTOCOL_MESSAGES:
        msg = decode_line(line)
        assert isinstance(msg, (Request, Response))
        if "method" in json.loads(line):
            assert isinstance(msg, Request) and msg.method == json.loads(line)["method"]


def test_decode_request_and_response_shapes():
    req = decode_line(b'{"id":null,"method":"mining.set_difficulty","params":[100.5]}\n')
    assert req == Request(None, "mining.set_difficulty", [100.5]) and req.is_notification
    resp = decode_line('{"reject-reason":"Above target 2","result":false,"error":null,"id":8}')
    assert isinstance(resp, Response) and not resp.ok and resp.error_message == "Above target 2"
    err = decode_line('{"id":5,"result":null,"error":[21,"Job not found",""]}')
    assert (err.error_code, err.error_message) == (21, "Job not found")
    assert decode_line(encode_request(7, "mining.submit", ["a", "b"])) == Request(7, "mining.submit", ["a", "b"])
    assert decode_line(encode_response(3, True)).ok


@pytest.mark.parametrize("line, what", [
    ("not json", "not JSON"), ("[1,2,3]", "JSON object"), ('{"id":1}', "neither"),
    ('{"id":1,"method":5,"params":[]}', "method"), ('{"id":1,"method":"x","params":{"a":1}}', "params"),
    ('{"id":true,"method":"x","params":[]}', "id"), ('{"id":[1],"result":true}', "id"),
    ('{"id":1,"method":"mining.set_difficulty","params":[NaN]}', "NaN"), ("", "empty"), ("   \n", "empty"),
    (b"\xff\xfe{}\n", "UTF-8"), ('{"id":1,', "not JSON"),
])
def test_malformed_lines_raise_stratum_error(line, what):
    with pytest.raises(StratumError, match=what):
        decode_line(line)


def test_oversize_line_is_refused():
    big = '{"id":1,"method":"x","params":["' + "a" * MAX_LINE_BYTES + '"]}'
    with pytest.raises(StratumError, match="too long"):
        decode_line(big)
    with pytest.raises(StratumError, match="too long"):
        decode_line(big.encode())


@pytest.mark.parametrize("error, expected", [
    ([21, "Job not found", ""], (21, "Job not found")), ([23, None, None], (23, "Low difficulty share")),
    ({"code": 22, "message": "Duplicate"}, (22, "Duplicate")), ("boom", (None, "boom")), (None, None),
    (24, (24, "Unauthorized worker")),
])
def test_parse_error_shapes(error, expected):
    assert parse_error(error) == expected


# ----------------------------------------------------------------------------- protocol
def sent(p: StratumProtocol) -> list[dict]:
    return [json.loads(line) for line in p.data_to_send().decode().splitlines()]


def opened(version_rolling: bool = True, **kw) -> tuple[StratumProtocol, dict[str, int]]:
    p = StratumProtocol("worker", "pw", version_rolling=version_rolling, **kw)
    p.start()
    ids = {m["method"]: m["id"] for m in sent(p)}
    return p, ids


def subscribe(p: StratumProtocol, ids: dict[str, int], en1: str = "aabbccdd", size: int = 4) -> list:
    return p.feed(json.dumps({"id": ids["mining.subscribe"], "error": None,
                              "result": [[["mining.notify", "x"]], en1, size]}))


def test_start_sends_configure_subscribe_authorize():
    p = StratumProtocol("alice", "secret", agent="sgm/test", extranonce_subscribe=True)
    p.start()
    msgs = sent(p)
    assert [m["method"] for m in msgs] == ["mining.configure", "mining.subscribe",
                                           "mining.extranonce.subscribe", "mining.authorize"]
    assert msgs[0]["params"] == [["version-rolling"], {"version-rolling.mask": "1fffe000",
                                                       "version-rolling.min-bit-count": 2}]
    assert msgs[1]["params"] == ["sgm/test"]
    assert msgs[3]["params"] == ["alice", "secret"]
    assert len({m["id"] for m in msgs}) == 4


def test_bip310_configure_examples_from_the_vectors():
    groups = {g["what"]: g["messages"] for g in VECTORS["protocol_messages"]}
    bip = next(v for k, v in groups.items() if "BIP 310" in k)
    p, ids = opened(requested_mask=0xFFFFFFFF)
    resp = json.loads(bip[1])
    resp["id"] = ids["mining.configure"]
    assert p.feed(json.dumps(resp)) == [VersionRollingConfigured(0x18000000, 0xFFFFFFFF)]
    events = p.feed(bip[2])
    assert events == [VersionMaskChanged(0x00003000, None)] and p.version_mask == 0x3000
    bitaxe = next(v for k, v in groups.items() if "Bitaxe" in k)
    p, ids = opened(requested_mask=0xFFFFFFFF)
    resp = json.loads(bitaxe[1])
    resp["id"] = ids["mining.configure"]
    p.feed(json.dumps(resp))
    assert p.version_mask == 0x1FFFE000
    # a pool that grants more than asked for only gets the bits requested
    p, ids = opened(requested_mask=0x1FFFE000)
    p.feed(json.dumps({"id": ids["mining.configure"], "error": None,
                       "result": {"version-rolling": True, "version-rolling.mask": "ffffffff"}}))
    assert p.version_mask == 0x1FFFE000
    # a refusal means no rolling
    p, ids = opened()
    p.feed(json.dumps({"id": ids["mining.configure"], "result": None, "error": [20, "unknown method", None]}))
    assert p.version_mask == 0


def test_notify_builds_a_job_with_session_values_and_fractional_difficulty():
    p, ids = opened()
    p.feed(json.dumps({"id": ids["mining.configure"], "error": None,
                       "result": {"version-rolling": True, "version-rolling.mask": "1fffe000"}}))
    assert subscribe(p, ids) == [Subscribed("aabbccdd", 4, [["mining.notify", "x"]])]
    assert p.feed(json.dumps({"id": ids["mining.authorize"], "result": True, "error": None})) == [Authorized(True)]
    (ev,) = p.feed('{"method":"mining.set_difficulty","params":[0.03571428571428571]}')
    assert isinstance(ev, DifficultyChanged)
    assert ev.target == difficulty_to_target(0.03571428571428571) and ev.job is None
    (ev,) = p.feed(encode_request(None, "mining.notify", NOTIFY))
    assert isinstance(ev, NewJob) and ev.clean
    job = ev.job
    assert job.extranonce1 == bytes.fromhex("aabbccdd") and job.extranonce2_size == 4
    assert job.version_mask == 0x1FFFE000 and job.target == difficulty_to_target(0.03571428571428571)
    (ev,) = p.feed('{"id":null,"method":"mining.set_difficulty","params":[100.5]}')
    assert ev.difficulty == 100.5 and ev.job.target == difficulty_to_target(100.5) and ev.job.job_id == "job1"
    (ev,) = p.feed(encode_request(None, "mining.notify", ["job2"] + NOTIFY[1:8] + [False]))
    assert not ev.clean and ev.job.target == difficulty_to_target(100.5)
    (ev,) = p.feed(encode_request(None, "mining.set_target", ["00000000ffff" + "0" * 52]))
    assert ev.target == DIFF1 and ev.difficulty == 1.0


def test_set_extranonce_applies_from_the_next_notify_even_with_the_same_job_id():
    p, ids = opened(version_rolling=False)
    subscribe(p, ids)
    (first,) = p.feed(encode_request(None, "mining.notify", NOTIFY[:8] + [False]))
    assert first.clean  # the first job of a session always replaces older work
    events = p.feed('{"id": null, "method": "mining.set_extranonce", "params": ["08000002", 4]}')
    assert events == [ExtranonceChanged("08000002", 4)]
    assert p.current_job.extranonce1 == bytes.fromhex("aabbccdd")  # not yet
    (ev,) = p.feed(encode_request(None, "mining.notify", NOTIFY[:8] + [False]))
    assert ev.job.job_id == first.job.job_id and ev.clean
    assert ev.job.extranonce1 == bytes.fromhex("08000002")
    assert ev.job.merkle_root(b"\0" * 4) != first.job.merkle_root(b"\0" * 4)
    # the ESP-Miner fixture (id 1 on a notification, 8-byte extranonce2)
    p.feed('{"id":1,"method":"mining.set_extranonce","params":["deadbeef",8]}')
    (ev,) = p.feed(encode_request(None, "mining.notify", NOTIFY))
    assert ev.job.extranonce2_size == 8 and ev.job.extranonce1 == bytes.fromhex("deadbeef")
    assert p.data_to_send() == b""  # notifications get no reply


def test_notify_before_subscribe_result_is_buffered():
    p, ids = opened(version_rolling=False)
    assert p.feed(encode_request(None, "mining.notify", NOTIFY)) == []
    events = subscribe(p, ids)
    assert isinstance(events[0], Subscribed) and isinstance(events[1], NewJob)
    assert events[1].job.extranonce1 == bytes.fromhex("aabbccdd")


def test_reconnect_message_and_show_message_and_get_version():
    p, ids = opened()
    assert p.feed('{"id":null,"method":"client.reconnect","params":[]}') == [Reconnect(None, None, 0.0)]
    assert p.feed('{"id":null,"method":"client.reconnect","params":["pool.example", "3334", 5]}') == [
        Reconnect("pool.example", 3334, 5.0)]
    assert p.feed('{"id":null,"method":"client.reconnect","params":["h", 99999, -3]}') == [Reconnect("h", None, 0.0)]
    assert p.feed('{"id":null,"method":"client.show_message","params":["hello"]}') == [ServerMessage("hello")]
    assert p.feed('{"id":42,"method":"client.get_version","params":[]}') == []
    assert sent(p) == [{"id": 42, "result": "sgm/0.1", "error": None}]
    assert p.feed('{"id":43,"method":"mining.unknown_thing","params":[]}') == []


def test_submit_results_in_every_error_shape():
    p, ids = opened()
    subscribe(p, ids)
    (ev,) = p.feed(encode_request(None, "mining.notify", NOTIFY))
    share = Share(ev.job.job_id, "00000001", "65000000", "0000abcd", "00002000", b"\0" * 32, 1.0, "aabbccdd")
    results = []
    for reply in ({"result": True, "error": None},
                  {"result": None, "error": [21, "Job not found", ""]},
                  {"reject-reason": "Above target 2", "result": False, "error": None},
                  {"result": False, "error": {"code": 23, "message": "Low difficulty share"}},
                  {"result": None, "error": None}):
        req_id = p.submit(share)
        (msg,) = sent(p)
        assert msg == {"id": req_id, "method": "mining.submit",
                       "params": ["worker", "job1", "00000001", "65000000", "0000abcd", "00002000"]}
        (res,) = p.feed(json.dumps({"id": req_id, **reply}))
        assert isinstance(res, SubmitResult) and res.id == req_id and res.share is share
        results.append((res.accepted, res.code, res.reason))
    assert results == [(True, None, None), (False, 21, "Job not found"), (False, None, "Above target 2"),
                       (False, 23, "Low difficulty share"), (False, None, "rejected")]
    assert p.pending_submits == 0
    # an answer to an id never used is ignored
    assert p.feed('{"id":5000,"result":true,"error":null}') == []


def test_recorded_esp_miner_fixtures_never_crash_the_protocol():
    p, ids = opened()
    subscribe(p, ids)
    p.feed(encode_request(None, "mining.notify", NOTIFY))
    for line in PROTOCOL_MESSAGES:
        for ev in p.feed(line):
            assert not isinstance(ev, ProtocolError), ev


@pytest.mark.parametrize("line", [
    "garbage", "[]", '{"method":"mining.notify","params":[]}',
    '{"method":"mining.notify","params":["j",1,2,3,4,5,6,7,8]}',
    encode_request(None, "mining.notify", ["j"] + NOTIFY[1:2] + [""] + NOTIFY[3:]),       # empty coinb1
    encode_request(None, "mining.notify", ["j", "ab"] + NOTIFY[2:]),                       # short prevhash
    '{"method":"mining.set_difficulty","params":[0]}', '{"method":"mining.set_difficulty","params":[-4]}',
    '{"method":"mining.set_difficulty","params":["abc"]}', '{"method":"mining.set_difficulty","params":[]}',
    '{"method":"mining.set_difficulty","params":[1e400]}', '{"method":"mining.set_difficulty","params":[1e300]}',
    '{"method":"mining.set_target","params":["' + "0" * 64 + '"]}',
    '{"method":"mining.set_extranonce","params":["xyz",4]}', '{"method":"mining.set_extranonce","params":["ab",99]}',
    '{"method":"mining.set_version_mask","params":[12]}',
])
def test_bad_pool_lines_become_protocol_errors_and_the_session_goes_on(line):
    p, ids = opened()
    subscribe(p, ids)
    p.feed('{"method":"mining.set_difficulty","params":[2]}')
    (good,) = p.feed(encode_request(None, "mining.notify", NOTIFY))
    events = p.feed(line)
    assert len(events) == 1 and isinstance(events[0], ProtocolError) and not events[0].fatal
    assert p.difficulty == 2 and p.target == difficulty_to_target(2)
    assert p.current_job == good.job
    (ev,) = p.feed(encode_request(None, "mining.notify", ["job9"] + NOTIFY[1:]))
    assert isinstance(ev, NewJob) and ev.job.target == difficulty_to_target(2)


def test_refused_subscribe_is_fatal():
    p, ids = opened()
    (ev,) = p.feed(json.dumps({"id": ids["mining.subscribe"], "result": None, "error": [20, "go away", None]}))
    assert isinstance(ev, ProtocolError) and ev.fatal and "go away" in ev.message
    p, ids = opened()
    (ev,) = subscribe(p, ids, en1="zz")
    assert isinstance(ev, ProtocolError) and ev.fatal


def test_refused_authorize():
    p, ids = opened()
    (ev,) = p.feed(json.dumps({"id": ids["mining.authorize"], "result": False, "error": [24, "bad user", None]}))
    assert ev == Authorized(False, "bad user") and not p.authorized


# ----------------------------------------------------------------- recorded session replays
CLIENT_METHODS = {"mining.subscribe", "mining.authorize", "mining.configure", "mining.submit",
                  "mining.suggest_difficulty", "mining.extranonce.subscribe"}


def strip_log_prefix(raw: str) -> str:
    if raw.startswith("["):
        raw = raw.split("] ", 1)[1]
    return raw[2:] if raw[:2] in ("> ", "< ") else raw


@pytest.mark.parametrize("s", [s for s in VECTORS["shares"] if s.get("raw_messages")], ids=lambda s: s["id"])
def test_replay_recorded_session_reproduces_the_submitted_share(s):
    sub = s["submit"]
    rolling = bool(s.get("version_mask"))
    p = StratumProtocol(sub["worker"] or "", "x", version_rolling=rolling,
                        requested_mask=0xFFFFFFFF if s.get("configure") else 0x1FFFE000)
    p.start()
    mine = {m["method"]: m["id"] for m in sent(p)}
    if rolling:
        resp = dict(s["configure"]["response"]) if s.get("configure") else {
            "error": None, "result": {"version-rolling": True, "version-rolling.mask": s["version_mask"]}}
        resp["id"] = mine["mining.configure"]
        p.feed(json.dumps(resp))
        assert p.version_mask == int(s["version_mask"], 16)
    id_map: dict = {}
    jobs: list[Job] = []
    results: list[SubmitResult] = []
    for raw in s["raw_messages"]:
        msg = json.loads(strip_log_prefix(raw))
        if msg.get("method") in CLIENT_METHODS:
            if msg["method"] == "mining.submit":
                job = jobs[-1]
                en2 = bytes.fromhex(sub["extranonce2"])
                vb = int(sub["version_bits"], 16) if sub["version_bits"] else None
                job = replace(job, extranonce2_start=int.from_bytes(en2, "big"))  # its work starts there
                share = make_share(job, MidstateCache().get(job, job.midstate_id_of(en2, vb)), int(sub["nonce"], 16))
                assert share.meets_target
                id_map[msg["id"]] = p.submit(share, sub["worker"])
                (out,) = sent(p)
                assert out["params"] == msg["params"]  # byte-for-byte the recorded submit
            else:
                id_map[msg["id"]] = mine.get(msg["method"])
            continue
        if "method" not in msg:
            if id_map.get(msg["id"]) is None:
                continue
            msg["id"] = id_map[msg["id"]]
        elif not p.subscribed:  # the capture starts after the subscribe exchange
            sr = s["subscribe_result"]
            subscribe(p, mine, sr["extranonce1"], sr["extranonce2_size"])
        for ev in p.feed(json.dumps(msg)):
            assert not isinstance(ev, ProtocolError), ev
            if isinstance(ev, NewJob):
                jobs.append(ev.job)
            if isinstance(ev, SubmitResult):
                results.append(ev)
    assert jobs and len(results) == 1 and results[0].accepted
    assert results[0].share.hash_hex == s["expected_hash"]
    if s.get("set_difficulty") is not None and any("set_difficulty" in r for r in s["raw_messages"]):
        assert jobs[-1].target == difficulty_to_target(s["set_difficulty"])


# ----------------------------------------------------------------------------- URLs
@pytest.mark.parametrize("url, host, port, tls", [
    ("stratum+tcp://pool.example.com:3333", "pool.example.com", 3333, False),
    ("stratum+ssl://pool.example.com:443", "pool.example.com", 443, True),
    ("stratum+tcps://10.0.0.1:4333", "10.0.0.1", 4333, True),
    ("stratum+tcp://[::1]:3333", "::1", 3333, False),
    ("pool.example.com:3333", "pool.example.com", 3333, False),
])
def test_parse_pool_url(url, host, port, tls):
    ep = parse_pool_url(url, "u", "p")
    assert (ep.host, ep.port, ep.tls, ep.user, ep.password) == (host, port, tls, "u", "p")


def test_parse_pool_url_credentials_in_url():
    ep = parse_pool_url("stratum+tcp://bob:s%40cret@h:1")
    assert (ep.user, ep.password) == ("bob", "s@cret")


@pytest.mark.parametrize("url, what", [
    ("", "empty"), ("http://pool:3333", "scheme"), ("stratum+tcp://pool", "port"),
    ("stratum+tcp://pool:99999", "port"), ("stratum+tcp://pool:abc", "port"), ("stratum+tcp://:3333", "host"),
    ("stratum+tcp://pool:3333/path", "path"), ("stratum+tcp://pool:0", "port"),
])
def test_parse_pool_url_refuses_bad_urls(url, what):
    with pytest.raises(ValueError, match=what):
        parse_pool_url(url)


@pytest.mark.parametrize("url, what", [
    ("stratum+tcp//bad", "://"), ("stratum+tcp:pool.example.com:3333", "://"),
    ("stratum+tcp:/pool:1", "://"), ("pool example.com:3333", "spaces"),
    ("stratum+tcp://pool example.com:3333", "spaces"), ("stratum+tcp://po\tol:1", "spaces"),
    ("stratum+tcp://pool!.example.com:3333", "not a valid host"),
    ("stratum+tcp://-pool.example.com:3333", "not a valid host"),
    ("stratum+tcp://pool..example.com:3333", "not a valid host"),
])
def test_parse_pool_url_names_a_malformed_url_instead_of_misreading_it(url, what):
    """A scheme without "://" is not read as a host named "stratum+tcp" (which gave
    "needs a port (e.g. stratum+tcp://stratum+tcp:3333)"), a host with a space or an
    impossible character is refused."""
    with pytest.raises(ValueError, match=re.escape(what)) as info:
        parse_pool_url(url)
    assert "stratum+tcp:3333" not in str(info.value)


def test_a_bare_host_and_port_gets_the_default_scheme_in_the_endpoint_url():
    ep = parse_pool_url("pool.example.com:3333")
    assert ep.url == "stratum+tcp://pool.example.com:3333" and not ep.tls


def test_client_refuses_a_bad_url_at_construction():
    with pytest.raises(ValueError, match="scheme"):
        StratumClient("ftp://x:1", "u", "p", on_job=lambda job: None)


# ----------------------------------------------------------------- client against LocalPool
def run(coro, timeout: float = 15.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def find_share(job: Job, cache: MidstateCache, midstate_id: int, *, skip: int = 0) -> Share:
    pw = cache.get(job, midstate_id)
    result = _native.scan(pw.midstate, pw.tail, 0, 1 << 20, job.target)
    assert len(result.nonces) > skip, "no share in 2^20 nonces at difficulty_bits=12"
    share = make_share(job, pw, result.nonces[skip])
    assert share.meets_target
    return share


def miss_share(job: Job, cache: MidstateCache, midstate_id: int) -> Share:
    pw = cache.get(job, midstate_id)
    for nonce in range(1000):
        share = make_share(job, pw, nonce)
        if not share.meets_target:
            return share
    raise AssertionError("every nonce met the target")


async def verdict(client: StratumClient, share: Share) -> tuple[bool | None, str | None]:
    v = await client.submit(share)
    return v.accepted, v.reason


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_client_mines_the_local_pool_accept_duplicate_stale_low_difficulty():
    async def main():
        pool = LocalPool(difficulty_bits=12, jobs=None, job_interval=60)
        await pool.start()
        jobs: asyncio.Queue = asyncio.Queue()
        events: list = []
        client = StratumClient(pool.url, "alice", "x", on_job=jobs.put_nowait, on_event=events.append)
        task = asyncio.create_task(client.run())
        try:
            job = await asyncio.wait_for(jobs.get(), 5)
            assert job.clean_jobs and job.version_mask == 0x1FFFE000 and job.extranonce2_size == 4
            assert job.target == difficulty_to_target(pool.difficulty) == pool.target
            cache = MidstateCache()
            share = find_share(job, cache, 0)
            assert await verdict(client, share) == (True, None)
            rolled = find_share(job, cache, 5)          # a version-rolled midstate
            assert rolled.version_bits != "00000000"
            assert await verdict(client, rolled) == (True, None)
            assert await verdict(client, share) == (False, "Duplicate share")
            low = miss_share(job, cache, 1)
            assert await verdict(client, low) == (False, "Low difficulty share")
            old = find_share(job, cache, 2)
            await pool.new_job(clean=True)
            job2 = await asyncio.wait_for(jobs.get(), 5)
            assert job2.job_id != job.job_id and job2.clean_jobs
            accepted, reason = await verdict(client, old)
            assert not accepted and "Job not found" in reason
            assert await verdict(client, find_share(job2, cache, 0)) == (True, None)
            codes = [ev.code for ev in events if isinstance(ev, SubmitResult)]
            assert codes == [None, None, 22, 23, 21, None]
            assert (client.accepted, client.rejected, client.stale) == (3, 3, 1)
            stats = pool.stats
            assert stats.accepted == 3
            assert stats.rejected == {"duplicate": 1, "low difficulty": 1, "stale": 1}
            assert stats.workers["alice"].accepted == 3 and stats.workers["alice"].rejected == 3
            assert [(a.job_id, a.nonce, a.hash) for a in stats.accepted_shares[:2]] == [
                (share.job_id, share.nonce, share.hash), (rolled.job_id, rolled.nonce, rolled.hash)]
            assert stats.best_share_difficulty == max(a.difficulty for a in stats.accepted_shares)
            assert any(isinstance(ev, Connected) for ev in events)
        finally:
            await client.close()
            await task
            await pool.stop()
        assert any(isinstance(ev, Disconnected) for ev in events)
        assert not client.connected
        assert await verdict(client, share) == (False, "not connected")

    run(main())


def handshake(writer: asyncio.StreamWriter, msg: dict, notify: bool = True) -> bool:
    """A scripted pool's answer to subscribe and authorize (then one job); False for any
    other request, which the script handles itself."""
    if msg["method"] == "mining.subscribe":
        writer.write(encode_response(msg["id"], [[], "00000001", 4]).encode())
    elif msg["method"] == "mining.authorize":
        writer.write(encode_response(msg["id"], True).encode())
        if notify:
            writer.write(encode_request(None, "mining.notify", NOTIFY).encode())
    else:
        return False
    return True


@contextlib.asynccontextmanager
async def client_of(script, **kw):
    """A StratumClient running against a scripted pool (an asyncio server on 127.0.0.1)."""
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kw.setdefault("on_job", lambda job: None)
    kw.setdefault("version_rolling", False)
    client = StratumClient(f"stratum+tcp://127.0.0.1:{port}", "w", "x", **kw)
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        await client.close()
        await task
        server.close()


def all_shares(job: Job, cache: MidstateCache, midstate_id: int, n: int) -> list[Share]:
    """``n`` distinct shares of one midstate, found by the native scanner."""
    pw = cache.get(job, midstate_id)
    result = _native.scan(pw.midstate, pw.tail, 0, 1 << 24, job.target)
    assert len(result.nonces) >= n, f"only {len(result.nonces)} shares in 2^24 nonces"
    shares = [make_share(job, pw, nonce) for nonce in result.nonces[:n]]
    assert all(s.meets_target for s in shares)
    return shares


def test_submit_many_sends_a_batch_in_one_write_and_every_share_gets_one_verdict():
    """A flood's shape: hundreds of shares handed over at once (tagged by the caller),
    judged by the real pool; the sink hears each share exactly once, with its tag."""
    async def main():
        pool = LocalPool(difficulty_bits=12, jobs=None, job_interval=60)
        await pool.start()
        jobs: asyncio.Queue = asyncio.Queue()
        client = StratumClient(pool.url, "alice", "x", on_job=jobs.put_nowait)
        task = asyncio.create_task(client.run())
        try:
            job = await asyncio.wait_for(jobs.get(), 5)
            cache = MidstateCache()
            good = all_shares(job, cache, 0, 300)
            low = miss_share(job, cache, 1)
            unknown = replace(good[0], job_id="not-this-session")
            items = [(share, f"dev{i % 3}") for i, share in enumerate(good)]
            items += [(good[7], "again"), (low, "low"), (unknown, "unknown")]
            heard: list[tuple[Share, str, Verdict]] = []
            calls = 0
            done = asyncio.Event()

            def sink(batch: list[tuple[Share, str, Verdict]]) -> None:
                nonlocal calls
                calls += 1
                heard.extend(batch)
                if len(heard) >= len(items):
                    done.set()

            client.submit_many(items, sink)
            await asyncio.wait_for(done.wait(), 10)
            await asyncio.sleep(0.2)        # nothing more may come
            assert len(heard) == len(items) and calls < len(items)   # in batches
            by_tag = {}
            for share, tag, v in heard:
                by_tag.setdefault(tag, []).append((share, v))
            accepted = [s for s, t, v in heard if v.accepted]
            assert sorted(s.nonce for s in accepted) == sorted(s.nonce for s in good)
            assert all(t == f"dev{good.index(s) % 3}" for s, t, v in heard if v.accepted)
            assert [v.reason for _, v in by_tag["again"]] == ["Duplicate share"]
            assert [v.reason for _, v in by_tag["low"]] == ["Low difficulty share"]
            (_, stale), = by_tag["unknown"]
            assert stale.accepted is False and not stale.sent and stale.stale
            assert pool.stats.accepted == 300 and client.accepted == 300
            assert client.protocol is not None and client.protocol.pending_submits == 0
        finally:
            await client.close()
            await task
            await pool.stop()

    run(main())


def test_shares_in_flight_when_the_pool_goes_away_are_told_no_answer_once_each():
    """A pool that reads the submits and closes the connection: every share written gets
    exactly one verdict, accepted=None (the pool may have counted it), none lost."""
    async def main():
        got: asyncio.Queue = asyncio.Queue()

        async def vanishing_pool(reader, writer):
            while line := await reader.readline():
                msg = json.loads(line)
                if not handshake(writer, msg) and msg["method"] == "mining.submit":
                    got.put_nowait(msg["id"])
                    if got.qsize() == 50:
                        break
            writer.close()

        async with client_of(vanishing_pool, backoff_initial=30) as client:
            job = await client.wait_for_job(5)
            pw = MidstateCache().get(job, 0)
            shares = [make_share(job, pw, n) for n in range(50)]
            heard: list[Verdict] = []
            done = asyncio.Event()

            def sink(batch):
                heard.extend(v for _, _, v in batch)
                if len(heard) >= 50:
                    done.set()

            client.submit_many([(s, None) for s in shares], sink)
            await asyncio.wait_for(done.wait(), 10)
            await asyncio.sleep(0.2)
            assert got.qsize() == 50 and len(heard) == 50
            assert all(v.accepted is None and v.sent and NO_ANSWER in v.reason for v in heard)

    run(main())


def test_the_submit_line_is_the_json_encode_request_makes():
    """The fast formatting of mining.submit: the same bytes as the general encoder, for
    awkward worker names and job ids too (quotes, backslashes, non-ASCII, newlines)."""
    for worker, job_id in [("alice", "1"), ('w"ör\\ker', "j\n1"), ("bc1q.rig-01", "ab" * 40)]:
        p = StratumProtocol(worker)
        for bits in ("20000000", None):
            share = Share(job_id=job_id, extranonce2="00ab0001", ntime="5f5e1000", nonce="deadbeef",
                          version_bits=bits, hash=bytes(32), difficulty=1.0)
            req_id = p.submit(share)
            assert p.data_to_send().decode() == encode_request(req_id, "mining.submit",
                                                               share.submit_params(worker))
    # a field that is not hex digits takes the general way, and still makes valid JSON
    p = StratumProtocol("w")
    odd = Share(job_id="1", extranonce2='00"b', ntime="5f5e1000", nonce="deadbeef", version_bits=None,
                hash=bytes(32), difficulty=1.0)
    req_id = p.submit(odd)
    assert json.loads(p.data_to_send())["params"][2] == '00"b'


@pytest.mark.parametrize("answer", [
    '{{"id":{},"result":true,"error":null}}', '{{"result": true, "error": null, "id": {}}}',
    '{{ "id" : {} , "result" : true , "error" : null }}\r',
])
def test_an_accepted_answer_in_any_usual_shape_is_the_same_result(answer):
    p, ids = opened()
    subscribe(p, ids)
    share = Share(job_id="1", extranonce2="00000001", ntime="5f5e1000", nonce="deadbeef",
                  version_bits=None, hash=bytes(32), difficulty=1.0)
    req_id = p.submit(share)
    line = answer.format(req_id)
    (res,) = p.feed(line.encode())
    assert res == SubmitResult(req_id, True, None, None, share)
    assert p.feed(line.encode()) == []          # answered once; a repeat is an unknown id
    other = p.submit(share)
    (res,) = p.feed(line.replace(str(req_id), str(other)))       # str: the general way
    assert res == SubmitResult(other, True, None, None, share)


def test_lines_split_across_reads_and_many_in_one_read_are_all_handled():
    """The session reads in chunks: a line cut in two, and a burst of many lines in one
    read, reach the protocol whole and in order."""
    async def main():
        async def chunky_pool(reader, writer):
            while line := await reader.readline():
                msg = json.loads(line)
                if msg["method"] == "mining.authorize":
                    data = encode_response(msg["id"], True) + encode_request(None, "mining.notify", NOTIFY)
                    for i in range(0, len(data), 7):       # in pieces of 7 bytes
                        writer.write(data[i:i + 7].encode())
                        await writer.drain()
                        await asyncio.sleep(0.001)
                    burst = "".join(encode_request(None, "mining.set_difficulty", [2.0 ** k])
                                    for k in range(1, 201))
                    writer.write(burst.encode())
                else:
                    handshake(writer, msg)
            writer.close()

        events: list = []
        async with client_of(chunky_pool, on_event=events.append) as client:
            job = await client.wait_for_job(5)
            assert job.job_id == "job1"
            for _ in range(200):
                if sum(isinstance(e, DifficultyChanged) for e in events) >= 200:
                    break
                await asyncio.sleep(0.02)
            diffs = [e.difficulty for e in events if isinstance(e, DifficultyChanged)]
            assert diffs == [2.0 ** k for k in range(1, 201)]

    run(main())


def test_client_fails_over_and_comes_back_to_the_primary():
    async def main():
        primary_port = free_port()
        backup = LocalPool(difficulty_bits=12, jobs=None, job_interval=60)
        await backup.start()
        jobs: asyncio.Queue = asyncio.Queue()
        client = StratumClient([(f"stratum+tcp://127.0.0.1:{primary_port}", "a", "x"), (backup.url, "b", "x")],
                               on_job=jobs.put_nowait, connect_timeout=1, backoff_initial=0.05,
                               retries_per_pool=1, failback_interval=0.2)
        task = asyncio.create_task(client.run())
        primary = None
        try:
            job = await asyncio.wait_for(jobs.get(), 5)
            assert client.current_pool is client.pools[1]
            assert await verdict(client, find_share(job, MidstateCache(), 0)) == (True, None)
            primary = LocalPool(difficulty_bits=12, jobs=None, job_interval=60, port=primary_port)
            await primary.start()
            job = await asyncio.wait_for(jobs.get(), 5)
            assert client.current_pool is client.pools[0] and job.clean_jobs
            assert await verdict(client, find_share(job, MidstateCache(), 0)) == (True, None)
            assert primary.stats.workers["a"].accepted == 1 and backup.stats.workers["b"].accepted == 1
        finally:
            await client.close()
            await task
            await backup.stop()
            if primary is not None:
                await primary.stop()

    run(main())


def test_client_follows_client_reconnect_to_another_port_on_the_same_host():
    async def main():
        pool = LocalPool(difficulty_bits=12, jobs=None, job_interval=60)
        await pool.start()

        async def redirector(reader, writer):
            await reader.readline()
            writer.write(encode_request(None, "client.reconnect", ["127.0.0.1", pool.port, 0]).encode())
            await writer.drain()
            await reader.read()  # until the client hangs up
            writer.close()

        server = await asyncio.start_server(redirector, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        jobs: asyncio.Queue = asyncio.Queue()
        events: list = []
        client = StratumClient(f"stratum+tcp://127.0.0.1:{port}", "w", "x", on_job=jobs.put_nowait,
                               on_event=events.append)
        task = asyncio.create_task(client.run())
        try:
            await asyncio.wait_for(jobs.get(), 5)
            assert Reconnect("127.0.0.1", pool.port, 0.0) in events
            assert pool.stats.connections == 1
        finally:
            await client.close()
            await task
            server.close()
            await pool.stop()

    run(main())


def test_a_late_answer_counts_as_the_pool_gave_it_and_a_missing_one_as_no_answer():
    """A pool slower than submit_timeout is still heard (the verdict is its late answer, not
    a made-up rejection); one that never answers gives accepted=None, and the session
    forgets the request (nothing grows)."""
    async def main():
        async def slow_pool(reader, writer):
            submits = 0
            while line := await reader.readline():
                msg = json.loads(line)
                if not handshake(writer, msg) and msg["method"] == "mining.submit":
                    submits += 1
                    if submits == 1:       # the first: answered late; the second: never
                        await asyncio.sleep(0.6)
                        writer.write(encode_response(msg["id"], True).encode())
            writer.close()

        async with client_of(slow_pool, submit_timeout=0.2, answer_timeout=3.0) as client:
            job = await client.wait_for_job(5)
            share = make_share(job, MidstateCache().get(job, 0), 0)
            assert await client.submit(share) == Verdict(True, None, None)
            client.answer_timeout = 0.5
            never = await client.submit(make_share(job, MidstateCache().get(job, 0), 1))
            assert never.accepted is None and never.reason == NO_ANSWER and never.sent
            assert client.protocol is not None and client.protocol.pending_submits == 0

    run(main())


def test_a_session_never_holds_more_than_a_bounded_number_of_unanswered_requests():
    p = StratumProtocol("w")
    p.start()
    job = Job.from_notify(NOTIFY, extranonce1="00000001", extranonce2_size=4, target=DIFF1)
    share = make_share(job, MidstateCache().get(job, 0), 0)
    for _ in range(MAX_PENDING_REQUESTS + 500):
        p.submit(share)
    assert p.pending_submits <= MAX_PENDING_REQUESTS


@pytest.fixture
def tls_cert(tmp_path):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make a test certificate: "
                    "apt-get install openssl (scripts/setup.sh installs it)", pytrace=False)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize("scheme", ["stratum+ssl", "stratum+tcps"])
def test_client_over_tls(tls_cert, scheme):
    cert, key = tls_cert

    async def main():
        pool = LocalPool(difficulty_bits=12, jobs=None, job_interval=60)
        await pool.start()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)

        async def pump(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def tls_front(reader, writer):  # TLS terminator in front of the TCP pool
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", pool.port)
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

        front = await asyncio.start_server(tls_front, "127.0.0.1", 0, ssl=server_ctx)
        port = front.sockets[0].getsockname()[1]
        client_ctx = ssl.create_default_context(cafile=str(cert))
        jobs: asyncio.Queue = asyncio.Queue()
        client = StratumClient(f"{scheme}://127.0.0.1:{port}", "tls", "x", on_job=jobs.put_nowait,
                               ssl_context=client_ctx)
        assert client.pools[0].tls
        task = asyncio.create_task(client.run())
        try:
            job = await asyncio.wait_for(jobs.get(), 5)
            assert await verdict(client, find_share(job, MidstateCache(), 0)) == (True, None)
            assert pool.stats.workers["tls"].accepted == 1
        finally:
            await client.close()
            await task
            front.close()
            await pool.stop()

    run(main())


def test_client_refuses_an_untrusted_tls_certificate(tls_cert):
    cert, key = tls_cert

    async def main():
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)

        async def handler(reader, writer):
            await reader.read()
            writer.close()

        front = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
        port = front.sockets[0].getsockname()[1]
        events: list = []
        client = StratumClient(f"stratum+ssl://127.0.0.1:{port}", "u", "x", on_job=lambda job: None,
                               on_event=events.append, backoff_initial=5)
        task = asyncio.create_task(client.run())
        try:
            for _ in range(100):
                if events:
                    break
                await asyncio.sleep(0.02)
            assert isinstance(events[0], Disconnected) and "connect" in events[0].reason
            assert not client.connected
        finally:
            await client.close()
            await task
            front.close()

    run(main())


def test_a_pool_that_never_sends_a_job_is_left_for_the_failover_pool_quickly():
    """A server that accepts the connection and then stays silent is dropped after the
    handshake timeout, and the client fails over to the next pool and gets work there."""
    async def main():
        async def silent(reader, writer):
            await reader.read()  # swallow everything, answer nothing

        dead = await asyncio.start_server(silent, "127.0.0.1", 0)
        dead_url = f"stratum+tcp://127.0.0.1:{dead.sockets[0].getsockname()[1]}"
        good = LocalPool(difficulty_bits=12, jobs=None, job_interval=60)
        await good.start()
        events = []
        client = StratumClient([(dead_url, "w", "x"), (good.url, "w", "x")], on_job=lambda j: None,
                               on_event=events.append, handshake_timeout=0.3,
                               retries_per_pool=1, backoff_initial=0.05)
        task = asyncio.create_task(client.run())
        try:
            job = await client.wait_for_job(timeout=60)
        finally:
            await client.close()
            await asyncio.gather(task, return_exceptions=True)
            await good.stop()
            dead.close()
        assert job is not None and client.current_pool.port == good.port
        reasons = [e.reason for e in events if isinstance(e, Disconnected)]
        assert any("no job from pool within 0.3s" in r for r in reasons), reasons

    asyncio.run(main())


def test_connect_errors_are_told_in_words_not_errno_text():
    from sgm.stratum.client import connect_error_words

    assert connect_error_words(ConnectionRefusedError(111, "Connect call failed")) == \
        "connection refused"
    assert connect_error_words(socket.gaierror(-2, "Name or service not known")) == "unknown host"
    assert connect_error_words(TimeoutError()) == "no answer (timed out)"
    assert "Errno" not in connect_error_words(OSError(113, "No route to host"))
