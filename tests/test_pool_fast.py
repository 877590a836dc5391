"""The embedded pool's share path under load: batched lines, the submit fast path, the
per-job share check, back-pressure on a client that does not read.

Clients are bare sockets (tests.test_pool.Raw and raw writes); valid nonces are found
with hashlib from the mining.notify text.  No test bounds how fast anything happens.
"""
import hashlib
import json
import logging
import random
import socket
import struct
import threading

import pytest

from sgm.hashing import MAX_TARGET, bits_to_target, difficulty_to_target
from sgm.pool import PoolThread
from sgm.pool.records import AcceptedShare
from sgm.pool.server import _MAX_WRITE_BUFFER, _READ_CHUNK
from sgm.pool.shares import JobShares, Reject, ShareRules, check_share
from sgm.pool.template import DEFAULT_VERSION, JobMaker
from tests.test_pool import DEADLINE, Raw, dsha

MASK = 0x1FFFE000


# ------------------------------------------------------------------------ helpers
def root_prefix(notify: list, en1: str, en2: str) -> bytes:
    """prevhash ‖ merkle root of the notify's job for this extranonce, from the text alone."""
    _job_id, prev, cb1, cb2, branch = notify[:5]
    h = dsha(bytes.fromhex(cb1 + en1 + en2 + cb2))
    for b in branch:
        h = dsha(h + bytes.fromhex(b))
    return b"".join(bytes.fromhex(prev)[i:i + 4][::-1] for i in range(0, 32, 4)) + h


def nonces(notify: list, en1: str, en2: str, target: int, count: int, *, hit: bool = True,
           start: int = 0) -> list[int]:
    """The first ``count`` nonces from ``start`` whose header meets ``target`` (or not)."""
    prefix = struct.pack("<I", int(notify[5], 16)) + root_prefix(notify, en1, en2)
    tail = struct.pack("<II", int(notify[7], 16), int(notify[6], 16))
    out = []
    nonce = start
    while len(out) < count:
        h = hashlib.sha256(hashlib.sha256(prefix + tail + struct.pack("<I", nonce)).digest()).digest()
        if (int.from_bytes(h, "little") <= target) == hit:
            out.append(nonce)
        nonce += 1
    return out


def submit_line(msg_id, params: list) -> bytes:
    return json.dumps({"id": msg_id, "method": "mining.submit", "params": params}).encode() + b"\n"


def read_replies(c: Raw, n: int) -> list[dict]:
    """The next ``n`` replies (notifications set aside in c.notes)."""
    out = []
    while len(out) < n:
        msg = c.recv()
        if msg.get("method"):
            c.notes.append(msg)
        else:
            out.append(msg)
    return out


@pytest.fixture
def easy_pool():
    with PoolThread(difficulty_bits=4, jobs=None, job_interval=3600) as p:
        yield p


# ------------------------------------------------------------- JobShares == check_share
def _verdict(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Reject as rej:
        return ("reject", rej.code, rej.message, rej.reason)


@pytest.mark.parametrize("reading", ["bip310", "ckpool", "xor"])
def test_the_per_job_check_gives_check_shares_verdict_share_for_share(reading):
    """JobShares.check against the reference check_share on the same shares, one after
    the other with their own duplicate sets: valid ones, low ones, duplicates, every kind
    of malformed field, version bits in and out of the mask, upper-case hex."""
    rng = random.Random(12)
    job = JobMaker(start_height=900_000, extranonce_size=8, version=0x30000000).make(True)
    fast = JobShares(job)
    target = bits_to_target(3)
    now = float(job.ntime + 10)
    seen_ref: set = set()
    seen_fast: set = set()
    en1s = [bytes.fromhex("0a0b0c0d"), bytes.fromhex("01020304")]
    kinds = {"accepted": 0, "low": 0, "duplicate": 0, "malformed": 0, "bits": 0}
    earlier: list[list[str]] = []
    for i in range(1500):
        en1 = rng.choice(en1s)
        params = ["w", job.job_id, f"{rng.randrange(3):08x}", f"{job.ntime + rng.randrange(5):08x}",
                  f"{rng.randrange(1 << 32):08x}"]
        if rng.random() < 0.4:
            params.append(f"{rng.randrange(1 << 32) & (MASK if rng.random() < 0.8 else 0xFFFFFFFF):08x}")
        roll = rng.random()
        if roll < 0.1 and earlier:
            params = list(rng.choice(earlier))                     # a duplicate (or a low one again)
        elif roll < 0.2:
            field = rng.randrange(2, len(params))
            params[field] = rng.choice(["", "xyz", "0x123456", "1234567", "123456789", " 1234567",
                                        "12345678\n", params[field].upper()])
        elif roll < 0.25:
            params[3] = rng.choice([f"{job.ntime - 1:08x}", f"{int(now) + 7201:08x}"])
        rules = ShareRules(en1, 4, MASK, target, reading)
        ref = _verdict(check_share, job, params, rules, seen_ref, now=now)
        got = _verdict(fast.check, params, en1, 4, MASK, target, reading, seen_fast, now)
        assert got == ref, (i, params)
        assert seen_fast == seen_ref
        if isinstance(ref, AcceptedShare):
            kinds["accepted"] += 1
            earlier.append(params)
        else:
            kinds[{23: "low", 22: "duplicate"}.get(ref[1], "bits" if "outside" in ref[2] else "malformed")] += 1
            if ref[1] == 23:
                earlier.append(params)
    assert all(kinds.values()), kinds   # every kind of verdict was compared


def test_the_per_job_check_keeps_a_bounded_root_cache():
    job = JobMaker(start_height=1, extranonce_size=8).make(True)
    fast = JobShares(job)
    for en2 in range(5000):
        params = ["w", job.job_id, f"{en2:08x}", f"{job.ntime:08x}", "00000000"]
        share = fast.check(params, b"\x00" * 4, 4, 0, MAX_TARGET, "bip310", set(), job.ntime)
        assert share.header == check_share(job, params, ShareRules(b"\x00" * 4, 4, 0, MAX_TARGET),
                                           set(), now=job.ntime).header
    assert len(fast._roots) <= 1024


# ------------------------------------------------------------------ batches on the wire
def test_500_valid_submits_in_one_write_get_500_answers_in_order(easy_pool):
    c = Raw(easy_pool.port)
    en1, _, notify, diff = c.login("w1")
    target = difficulty_to_target(diff)
    found = nonces(notify, en1, "00000000", target, 500)
    # ids of every JSON shape a client may use, each echoed exactly
    ids: list = [1000 + i for i in range(500)]
    ids[1], ids[2], ids[3], ids[4], ids[5] = "s-1", 'quo"te\\', "é\u2603", 2 ** 70, -7
    ids[6], ids[7] = 0, ""
    blast = b"".join(submit_line(ids[i], ["w1", notify[0], "00000000", notify[7], f"{n:08x}"])
                     for i, n in enumerate(found))
    c.send(blast)
    replies = read_replies(c, 500)
    assert [r["id"] for r in replies] == ids
    assert [type(r["id"]) for r in replies] == [type(i) for i in ids]
    assert all(r["result"] is True and r["error"] is None for r in replies)
    stats = easy_pool.stats
    assert stats.accepted == 500 and stats.rejected_total == 0
    assert stats.workers["w1"].accepted == 500
    assert {s.nonce for s in stats.accepted_shares} == {f"{n:08x}" for n in found}
    c.close()


def test_a_mixed_batch_gets_each_line_its_own_verdict_in_order():
    with PoolThread(difficulty_bits=6, jobs=None, job_interval=3600) as p:
        c = Raw(p.port)
        en1, _, old, diff = c.login("w1")
        p.new_job(clean=True)
        notify = c.note("mining.notify")["params"]
        target = difficulty_to_target(diff)
        good = nonces(notify, en1, "00000001", target, 3)
        low = nonces(notify, en1, "00000001", target, 1, hit=False)[0]
        stale = nonces(old, en1, "00000001", target, 1)[0]

        def sub(i, nonce, job=notify, en2="00000001", worker="w1"):
            return submit_line(i, [worker, job[0], en2, job[7], f"{nonce:08x}"])
        batch = [
            sub(1, good[0]),                                         # accepted
            sub(2, good[0]),                                         # duplicate
            b"{not json\n",                                          # malformed line
            sub(3, stale, job=old),                                  # stale job
            b"\r\n",                                                 # blank: no answer
            sub(4, good[1]),                                         # accepted
            sub(5, low),                                             # low difficulty
            submit_line(6, ["w1", "ffff", "00000001", notify[7], "00000000"]),   # unknown job
            submit_line(7, ["w1", notify[0], "0001", notify[7], "00000000"]),    # extranonce2 size
            submit_line(8, ["w1", notify[0], "00000001", notify[7]]),            # shape
            sub(9, good[2], worker="nobody"),                        # unauthorized worker
            json.dumps({"id": 10, "method": "mining.authorize", "params": ["w2", "x"]}).encode() + b"\n",
            sub(11, good[2], worker="w2"),                           # accepted, for w2
            json.dumps({"id": True, "method": "mining.submit", "params": []}).encode() + b"\n",
            sub("last", good[2]),                                    # duplicate (w2 found it)
        ]
        c.send(b"".join(batch))
        replies = read_replies(c, 14)
        assert [r["id"] for r in replies] == [1, 2, None, 3, 4, 5, 6, 7, 8, 9, 10, 11, None, "last"]
        verdicts = [r["result"] if r["error"] is None else r["error"][0] for r in replies]
        assert verdicts == [True, 22, 20, 21, True, 23, 21, 20, 20, 24, True, True, 20, 22]
        assert "stale" in replies[3]["error"][1] and replies[6]["error"][1] == "Job not found"
        assert replies[7]["error"][1] == "Invalid extranonce2 size"
        assert replies[2]["error"][1].startswith("Malformed request")
        s = p.stats
        assert s.accepted == 3 and s.workers["w1"].accepted == 2 and s.workers["w2"].accepted == 1
        assert s.rejected == {"duplicate": 2, "stale": 1, "low difficulty": 1, "job not found": 1,
                              "malformed": 2, "unauthorized": 1}
        assert c.call("mining.extranonce.subscribe", [])["result"] is True   # still connected
        c.close()


def test_a_line_in_pieces_and_a_last_line_without_newline_are_answered(easy_pool):
    c = Raw(easy_pool.port)
    en1, _, notify, diff = c.login("w1")
    a, b = nonces(notify, en1, "00000000", difficulty_to_target(diff), 2)
    line = submit_line(41, ["w1", notify[0], "00000000", notify[7], f"{a:08x}"])
    for i in range(len(line)):                      # one byte a write
        c.sock.sendall(line[i:i + 1])
    assert read_replies(c, 1) == [{"id": 41, "result": True, "error": None}]
    c.sock.sendall(submit_line(42, ["w1", notify[0], "00000000", notify[7], f"{b:08x}"]).rstrip(b"\n"))
    c.sock.shutdown(socket.SHUT_WR)                 # end of stream: the line is complete
    assert read_replies(c, 1) == [{"id": 42, "result": True, "error": None}]
    assert easy_pool.stats.accepted == 2
    c.close()


def test_lines_before_an_over_long_one_are_answered_then_the_client_is_dropped(easy_pool):
    c = Raw(easy_pool.port)
    en1, _, notify, diff = c.login("w1")
    (n,) = nonces(notify, en1, "00000000", difficulty_to_target(diff), 1)
    c.send(submit_line(1, ["w1", notify[0], "00000000", notify[7], f"{n:08x}"])
           + b'{"id":2,"method":"x","params":["' + b"A" * (100 * 1024) + b'"]}\n')
    first, second = read_replies(c, 2)
    assert first == {"id": 1, "result": True, "error": None}
    assert second["id"] is None and second["error"][1] == "Line too long"
    assert c.is_closed()
    assert easy_pool.stats.accepted == 1 and easy_pool.stats.disconnects_for_misbehaviour == 1


def test_malformed_lines_in_one_write_count_strikes_and_the_tenth_drops_the_client(easy_pool):
    c = Raw(easy_pool.port)
    c.send(b"nope\n" * 9 + b'{"id":5,"method":"mining.subscribe","params":[]}\n' + b"nope\n" * 5)
    replies = read_replies(c, 11)
    assert [r["id"] for r in replies] == [None] * 9 + [5, None]
    assert replies[9]["error"] is None
    assert c.is_closed()
    assert easy_pool.stats.disconnects_for_misbehaviour == 1


# ------------------------------------------------------------------ a client that does not read
def test_a_client_that_never_reads_is_held_to_a_bounded_buffer_and_others_are_served(easy_pool):
    hog = Raw(easy_pool.port)
    en1, _, notify, diff = hog.login("hog")
    (n,) = nonces(notify, en1, "00000000", difficulty_to_target(diff), 1)
    # the same share again and again: each answer (a duplicate) is longer than a short id's
    chunk = b"".join(submit_line(i, ["hog", notify[0], "00000000", notify[7], f"{n:08x}"])
                     for i in range(400))
    limit = 256 << 20
    sent = [0]
    stalled = threading.Event()

    def blast() -> None:
        hog.sock.settimeout(2.0)
        try:
            while sent[0] < limit:
                sent[0] += hog.sock.send(chunk)
        except TimeoutError:
            stalled.set()       # the pool stopped reading: the kernel's buffers are full
        except OSError:
            stalled.set()       # or it dropped the client
    sender = threading.Thread(target=blast, daemon=True)
    sender.start()
    sender.join(DEADLINE * 4)
    assert stalled.is_set() and sent[0] < limit, f"the pool took {sent[0]} bytes unread"

    pool = easy_pool.pool

    async def held() -> list[int]:
        return [c.writer.transport.get_write_buffer_size() for c in pool._conns.values()]
    assert max(easy_pool._call(held())) <= _MAX_WRITE_BUFFER + 8 * _READ_CHUNK

    other = Raw(easy_pool.port)                     # the pool serves others meanwhile
    en1b, _, notify_b, diff_b = other.login("other")
    (m,) = nonces(notify_b, en1b, "00000000", difficulty_to_target(diff_b), 1)
    assert other.submit("other", notify_b, "00000000", m)["result"] is True
    assert easy_pool.stats.workers["other"].accepted == 1
    other.close()
    hog.close()


# ------------------------------------------------------------------ logging
def test_accepted_shares_are_logged_at_debug_level_only(easy_pool, caplog):
    c = Raw(easy_pool.port)
    en1, _, notify, diff = c.login("w1")
    a, b = nonces(notify, en1, "00000000", difficulty_to_target(diff), 2)
    caplog.set_level(logging.INFO, logger="sgm.pool.server")
    assert c.submit("w1", notify, "00000000", a)["result"] is True
    assert not [r for r in caplog.records if "share accepted" in r.getMessage()]
    caplog.set_level(logging.DEBUG, logger="sgm.pool.server")
    assert c.submit("w1", notify, "00000000", b)["result"] is True
    lines = [r for r in caplog.records if "share accepted" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG
    assert f"job {notify[0]}" in lines[0].getMessage() and f"version {DEFAULT_VERSION:08x}" in lines[0].getMessage()
    c.close()


# ------------------------------------------------------------------ the line decoder
@pytest.mark.parametrize("text", [
    '{"id":1,"method":"mining.submit","params":["w","1","00","00","00"]}',
    '{"id":1,"method":"mining.submit","params":[]}\r',
    '{"id":1,"method":"mining.submit","params":[]} \t\x1c',
    ' {"id":1,"method":"mining.submit","params":[]}',
    '\ufeff{"id":1,"method":"mining.submit","params":[]}',
    '{"id":1,"method":"mining.submit","params":[NaN]}',
    '{"id":1,"method":"mining.submit","params":[1e999]}',
    '{"id":1,"method":"mining.submit","params":[]}{"id":2}',
    '{"id":1,"method":"mining.submit","params":[]} x',
    '[1]', '"text"', '', '{"id":1,"method":"mining.submit","params":["\\ud800"]}',
])
def test_decode_json_reads_a_line_as_decode_line_does_or_refuses_it(text):
    """What the fast path reads, decode_line reads the same; what it refuses goes to
    decode_line, which gives the error (so no line gets a different verdict)."""
    from sgm.stratum.messages import Request, StratumError, decode_json, decode_line
    try:
        obj = decode_json(text)
    except ValueError:
        return      # the pool hands the line to decode_line, as before
    if not isinstance(obj, dict):    # the pool's fast path takes objects only
        with pytest.raises(StratumError):
            decode_line(text)
        return
    msg = decode_line(text)
    assert isinstance(msg, Request)
    assert (msg.id, msg.method, msg.params) == (obj.get("id"), obj["method"], obj["params"])
