"""The embedded LocalPool over raw sockets: real jobs, real share checks, robust against bad
clients, jobs on a timer."""
import hashlib
import json
import socket
import struct
import time

import pytest

from sgm.hashing import difficulty_to_target
from sgm.jobs import Job
from sgm.pool import LocalPool, PoolThread, build_coinbase_parts, merkle_branch
from sgm.stratum.messages import MAX_LINE_BYTES


def dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


class Raw:
    """A bare-socket Stratum client: no sgm code on this side of the wire."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.sock.makefile("rb")
        self.notes: list[dict] = []
        self.next_id = 1

    def send(self, data) -> None:
        if isinstance(data, dict):
            data = json.dumps(data).encode() + b"\n"
        self.sock.sendall(data)

    def recv(self) -> dict:
        line = self.file.readline()
        if not line:
            raise EOFError("pool closed the connection")
        return json.loads(line)

    def call(self, method: str, params: list) -> dict:
        msg_id = self.next_id
        self.next_id += 1
        self.send({"id": msg_id, "method": method, "params": params})
        while True:
            msg = self.recv()
            if msg.get("method"):
                self.notes.append(msg)
            elif msg.get("id") == msg_id:
                return msg

    def note(self, method: str) -> dict:
        for i, msg in enumerate(self.notes):
            if msg["method"] == method:
                return self.notes.pop(i)
        while True:
            msg = self.recv()
            if msg.get("method") == method:
                return msg
            if msg.get("method"):
                self.notes.append(msg)

    def is_closed(self, timeout: float = 3.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.file.readline():
                    return True
        except (ConnectionError, OSError):
            return True

    def login(self, worker: str = "w1", mask: str | None = None) -> tuple[str, int, list]:
        if mask is not None:
            assert self.call("mining.configure", [["version-rolling"], {"version-rolling.mask": mask}])["result"]
        sub = self.call("mining.subscribe", ["raw-test"])["result"]
        assert self.call("mining.authorize", [worker, "x"])["result"] is True
        diff = self.note("mining.set_difficulty")["params"][0]
        notify = self.note("mining.notify")["params"]
        return sub[1], sub[2], notify, diff

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def header_of(notify: list, en1: str, en2: str, nonce: int, ntime: str | None = None, version: int | None = None) -> bytes:
    """Independent header assembly straight from the notify params."""
    job_id, prev, cb1, cb2, branch, ver, nbits, nt = notify[:8]
    h = dsha(bytes.fromhex(cb1 + en1 + en2 + cb2))
    for b in branch:
        h = dsha(h + bytes.fromhex(b))
    prev_bytes = b"".join(bytes.fromhex(prev)[i:i + 4][::-1] for i in range(0, 32, 4))
    return (struct.pack("<I", int(ver, 16) if version is None else version) + prev_bytes + h
            + struct.pack("<III", int(ntime or nt, 16), int(nbits, 16), nonce))


def search(notify: list, en1: str, en2: str, target: int, want_hit: bool = True, start: int = 0) -> int:
    for nonce in range(start, start + 200_000):
        ok = int.from_bytes(dsha(header_of(notify, en1, en2, nonce)), "little") <= target
        if ok == want_hit:
            return nonce
    raise AssertionError("no suitable nonce found")


@pytest.fixture
def pool():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=60) as p:
        yield p


def test_only_loopback_is_bound():
    with pytest.raises(ValueError, match="127.0.0.1"):
        LocalPool(host="0.0.0.0")
    with PoolThread(difficulty_bits=8, jobs=1, job_interval=60) as p:
        assert p.pool._server.sockets[0].getsockname()[0] == "127.0.0.1"
        assert p.url == f"stratum+tcp://127.0.0.1:{p.port}"


def test_subscribe_authorize_then_difficulty_and_a_clean_job(pool):
    c = Raw(pool.port)
    sub = c.call("mining.subscribe", ["raw-test"])
    subs, en1, size = sub["result"]
    assert sub["error"] is None and size == 4 and len(bytes.fromhex(en1)) == 4
    assert {s[0] for s in subs} == {"mining.set_difficulty", "mining.notify"}
    assert c.call("mining.extranonce.subscribe", [])["result"] is True
    assert c.call("mining.authorize", ["alice", "x"])["result"] is True
    diff = c.note("mining.set_difficulty")["params"][0]
    assert difficulty_to_target(diff) == pool.pool.target
    notify = c.note("mining.notify")["params"]
    assert notify[8] is True and notify[0] == pool.current_job().job_id
    job = Job.from_notify(notify, extranonce1=en1, extranonce2_size=size, target=pool.pool.target)
    assert abs(job.ntime - time.time()) < 60
    # a second client gets a different extranonce1
    other = Raw(pool.port)
    assert other.call("mining.subscribe", [])["result"][1] != en1
    c.close()
    other.close()


def test_configure_grants_the_pool_mask_and_the_requested_bits(pool):
    c = Raw(pool.port)
    res = c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff"}])["result"]
    assert res == {"version-rolling": True, "version-rolling.mask": "1fffe000"}
    res = c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "00ff0000"}])["result"]
    assert res == {"version-rolling": True, "version-rolling.mask": "00ff0000"}
    res = c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "e0ff1fff"}])["result"]
    assert res == {"version-rolling": True, "version-rolling.mask": "00ff0000"}
    res = c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "e0001fff"}])["result"]
    assert res == {"version-rolling": False}
    res = c.call("mining.configure", [["version-rolling", "minimum-difficulty"],
                                      {"version-rolling.mask": "00002000", "version-rolling.min-bit-count": 2}])
    assert res["result"] == {"version-rolling": False, "minimum-difficulty": False}
    c.close()


def parse_coinbase(tx: bytes) -> dict:
    pos = 0

    def take(n):
        nonlocal pos
        out = tx[pos:pos + n]
        assert len(out) == n, "coinbase ends early"
        pos += n
        return out

    def varint():
        first = take(1)[0]
        return first if first < 0xFD else int.from_bytes(take({0xFD: 2, 0xFE: 4, 0xFF: 8}[first]), "little")

    out = {"version": struct.unpack("<I", take(4))[0], "inputs": varint()}
    out["prevout"] = take(36)
    out["script_sig"] = take(varint())
    out["sequence"] = take(4)
    n_out = varint()
    out["outputs"] = [(struct.unpack("<Q", take(8))[0], take(varint())) for _ in range(n_out)]
    out["locktime"] = struct.unpack("<I", take(4))[0]
    assert pos == len(tx), "bytes after the locktime"
    return out


def test_job_has_a_real_coinbase_and_a_real_merkle_branch(pool):
    c = Raw(pool.port)
    en1, size, notify, _ = c.login()
    pjob = pool.current_job()
    en2 = "0a0b0c0d"
    coinbase = bytes.fromhex(notify[2] + en1 + en2 + notify[3])
    tx = parse_coinbase(coinbase)
    assert tx["version"] == 2 and tx["inputs"] == 1
    assert tx["prevout"] == b"\x00" * 32 + b"\xff\xff\xff\xff"
    script = tx["script_sig"]
    assert 2 <= len(script) <= 100
    n = script[0]
    assert int.from_bytes(script[1:1 + n], "little") == pjob.height  # BIP 34
    assert bytes.fromhex(en1 + en2) in script
    assert len(tx["outputs"]) == 1 and tx["outputs"][0][0] > 0 and len(tx["outputs"][0][1]) == 22
    # full merkle tree over [coinbase, *txids], computed here from scratch
    level = [dsha(coinbase)] + list(pjob.txids)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [dsha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    job = Job.from_notify(notify, extranonce1=en1, extranonce2_size=size, target=1)
    assert job.merkle_root(bytes.fromhex(en2)) == level[0]
    assert header_of(notify, en1, en2, 5)[36:68] == level[0]
    c.close()


@pytest.mark.parametrize("n_tx", [0, 1, 2, 3, 4, 7, 8])
def test_merkle_branch_helper_matches_a_full_tree(n_tx):
    txids = [dsha(bytes([i])) for i in range(n_tx)]
    leaf = dsha(b"coinbase")
    h = leaf
    for b in merkle_branch(txids):
        h = dsha(h + b)
    level = [leaf] + txids
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [dsha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    assert h == level[0]


def test_bip34_height_encoding():
    coinb1, _ = build_coinbase_parts(0x80, 8)
    # 0x80 needs a sign byte: push of 2 bytes 80 00
    assert coinb1.endswith(bytes([2, 0x80, 0x00, 8]))
    coinb1, _ = build_coinbase_parts(900_000, 8)
    assert coinb1.endswith(bytes([3]) + (900_000).to_bytes(3, "little") + bytes([8]))


def test_share_is_checked_with_a_real_hash_and_accounted(pool):
    c = Raw(pool.port)
    en1, size, notify, diff = c.login("alice")
    target = difficulty_to_target(diff)
    en2 = "00000007"
    nonce = search(notify, en1, en2, target)
    res = c.call("mining.submit", ["alice", notify[0], en2, notify[7], f"{nonce:08x}"])
    assert res["result"] is True and res["error"] is None
    dup = c.call("mining.submit", ["alice", notify[0], en2, notify[7], f"{nonce:08x}"])
    assert dup["result"] is False and dup["error"][0] == 22
    low = search(notify, en1, en2, target, want_hit=False)
    res = c.call("mining.submit", ["alice", notify[0], en2, notify[7], f"{low:08x}"])
    assert res["error"][0] == 23
    stats = pool.stats
    assert stats.accepted == 1 and stats.rejected == {"duplicate": 1, "low difficulty": 1}
    (acc,) = stats.accepted_shares
    header = header_of(notify, en1, en2, nonce)
    assert acc.header == header and acc.hash == dsha(header)
    assert (acc.job_id, acc.nonce, acc.extranonce1, acc.extranonce2) == (notify[0], f"{nonce:08x}", en1, en2)
    assert stats.workers["alice"].accepted == 1 and stats.workers["alice"].rejected == 2
    assert stats.best_share_difficulty == acc.difficulty > 0
    c.close()


def test_version_rolled_share(pool):
    c = Raw(pool.port)
    en1, size, notify, diff = c.login("bob", mask="1fffe000")
    target = difficulty_to_target(diff)
    vb = 0x0ABCE000 & 0x1FFFE000
    version = int(notify[5], 16) | vb
    en2 = "00000000"
    nonce = next(n for n in range(200_000)
                 if int.from_bytes(dsha(header_of(notify, en1, en2, n, version=version)), "little") <= target)
    res = c.call("mining.submit", ["bob", notify[0], en2, notify[7], f"{nonce:08x}", f"{vb:08x}"])
    assert res["result"] is True
    assert pool.stats.accepted_shares[-1].header == header_of(notify, en1, en2, nonce, version=version)
    bad = c.call("mining.submit", ["bob", notify[0], en2, notify[7], f"{nonce:08x}", "e0000000"])
    assert bad["error"][0] == 20 and "mask" in bad["error"][1]
    c.close()


def test_submit_error_codes(pool):
    c = Raw(pool.port)
    job_id = pool.current_job().job_id
    ntime = f"{pool.current_job().ntime:08x}"
    res = c.call("mining.submit", ["w", job_id, "00000000", ntime, "00000000"])
    assert res["error"][0] == 25
    c.call("mining.subscribe", [])
    res = c.call("mining.submit", ["w", job_id, "00000000", ntime, "00000000"])
    assert res["error"][0] == 24
    c.call("mining.authorize", ["w", "x"])
    cases = [
        (["other", job_id, "00000000", ntime, "00000000"], 24),           # worker not authorized here
        (["w", job_id, "00000000", ntime], 20),                           # too few params
        (["w", job_id, "00000000", ntime, 5], 20),                        # nonce not a string
        (["w", "nope", "00000000", ntime, "00000000"], 21),               # unknown job
        (["w", job_id, "000000", ntime, "00000000"], 20),                 # extranonce2 size
        (["w", job_id, "0000000g", ntime, "00000000"], 20),               # not hex
        (["w", job_id, "00000000", "00000001", "00000000"], 20),          # ntime before the job
        (["w", job_id, "00000000", "ffffffff", "00000000"], 20),          # ntime far in the future
        (["w", job_id, "00000000", ntime, "00000000", "00002000"], 20),   # rolling not negotiated
    ]
    for params, code in cases:
        res = c.call("mining.submit", params)
        assert res["result"] is False and res["error"][0] == code, params
    stats = pool.stats
    assert stats.accepted == 0
    assert stats.rejected == {"not subscribed": 1, "unauthorized": 2, "malformed": 6, "job not found": 1,
                              "invalid version bits": 1}
    c.close()


def test_stale_job_after_a_clean_job(pool):
    c = Raw(pool.port)
    en1, size, notify, diff = c.login()
    nonce = search(notify, en1, "00000001", difficulty_to_target(diff))
    pool.new_job(clean=True)
    fresh = c.note("mining.notify")["params"]
    assert fresh[8] is True and fresh[0] != notify[0] and fresh[1] != notify[1]
    res = c.call("mining.submit", ["w1", notify[0], "00000001", notify[7], f"{nonce:08x}"])
    assert res["error"][0] == 21 and "stale" in res["error"][1]
    assert pool.stats.rejected == {"stale": 1}
    c.close()


# ----------------------------------------------------------------------------- robustness
def test_malformed_json_gets_an_error_and_the_connection_survives(pool):
    c = Raw(pool.port)
    c.send(b"this is not json\n")
    reply = c.recv()
    assert reply["id"] is None and reply["error"][0] == 20 and "Malformed" in reply["error"][1]
    c.send(b'{"id": 3, "method": 17}\n')
    assert c.recv()["error"][0] == 20
    c.send(b"\xff\xfe\x00garbage\n")
    assert c.recv()["error"][0] == 20
    c.send(b"[1, 2, 3]\n\n\n")
    assert c.recv()["error"][0] == 20
    assert c.call("mining.subscribe", [])["result"][2] == 4
    c.close()


def test_unknown_method_gets_error_20_with_its_id(pool):
    c = Raw(pool.port)
    res = c.call("mining.get_transactions", ["x"])
    assert res["result"] is None and res["error"][0] == 20 and "Unknown method" in res["error"][1]
    res = c.call("mining.subscribe", [])
    assert res["error"] is None
    c.close()


def test_oversized_line_disconnects_only_that_client(pool):
    good = Raw(pool.port)
    good.login("good")
    bad = Raw(pool.port)
    bad.send(b'{"id":1,"method":"mining.subscribe","params":["' + b"A" * (MAX_LINE_BYTES + 1000) + b'"]}\n')
    assert bad.is_closed()
    assert good.call("mining.authorize", ["good2", "x"])["result"] is True
    late = Raw(pool.port)
    assert late.call("mining.subscribe", [])["error"] is None
    assert pool.stats.disconnects_for_misbehaviour == 1
    for c in (good, bad, late):
        c.close()


def test_a_flood_of_malformed_lines_disconnects_that_client(pool):
    bad = Raw(pool.port)
    bad.send(b"nope\n" * 50)
    assert bad.is_closed()
    ok = Raw(pool.port)
    assert ok.call("mining.subscribe", [])["error"] is None
    ok.close()
    bad.close()


def test_client_vanishing_mid_line_does_not_hurt_the_pool(pool):
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", pool.port), timeout=5)
        s.sendall(b'{"id":1,"method":"mining.subscr')
        s.close()
    c = Raw(pool.port)
    assert c.call("mining.subscribe", [])["error"] is None
    c.close()


# ----------------------------------------------------------------------------- timer
def test_jobs_on_the_timer_with_clean_jobs_then_finished():
    with PoolThread(difficulty_bits=8, jobs=3, job_interval=0.25, clean_jobs=True) as p:
        c = Raw(p.port)
        en1, size, first, diff = c.login()
        t0 = time.monotonic()
        notifies = [first] + [c.note("mining.notify")["params"] for _ in range(2)]
        assert time.monotonic() - t0 >= 0.3
        assert [n[8] for n in notifies] == [True, True, True]
        assert len({n[0] for n in notifies}) == 3 and len({n[1] for n in notifies}) == 3
        assert p.wait_finished(3.0)
        assert "3 jobs done" in c.note("client.show_message")["params"][0]
        assert p.stats.jobs_issued == 3
        time.sleep(0.35)
        assert p.stats.jobs_issued == 3  # no more jobs after the last one
        # submits are still served after finishing
        nonce = search(notifies[-1], en1, "00000000", difficulty_to_target(diff))
        res = c.call("mining.submit", ["w1", notifies[-1][0], "00000000", notifies[-1][7], f"{nonce:08x}"])
        assert res["result"] is True
        c.close()


def test_non_clean_jobs_keep_older_jobs_valid():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=0.2, clean_jobs=False) as p:
        c = Raw(p.port)
        en1, size, first, diff = c.login()
        second = c.note("mining.notify")["params"]
        assert first[8] is True and second[8] is False
        assert second[1] == first[1] and second[0] != first[0]  # same block, new transactions
        nonce = search(first, en1, "00000002", difficulty_to_target(diff))
        res = c.call("mining.submit", ["w1", first[0], "00000002", first[7], f"{nonce:08x}"])
        assert res["result"] is True
        assert not p.finished
        c.close()


def test_stale_grace_accepts_shares_for_a_just_replaced_job():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=60, stale_grace=5.0) as p:
        c = Raw(p.port)
        en1, size, notify, diff = c.login()
        target = difficulty_to_target(diff)
        nonce = search(notify, en1, "00000001", target)
        p.new_job(clean=True)
        assert c.note("mining.notify")["params"][8] is True
        res = c.call("mining.submit", ["w1", notify[0], "00000001", notify[7], f"{nonce:08x}"])
        assert res["result"] is True
        dup = c.call("mining.submit", ["w1", notify[0], "00000001", notify[7], f"{nonce:08x}"])
        assert dup["error"][0] == 22
        low = search(notify, en1, "00000001", target, want_hit=False)
        res = c.call("mining.submit", ["w1", notify[0], "00000001", notify[7], f"{low:08x}"])
        assert res["error"][0] == 23
        assert p.stats.accepted == 1
        c.close()
