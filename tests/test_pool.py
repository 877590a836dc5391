"""The embedded local pool, specified module by module over raw sockets.

The clients here are bare sockets speaking JSON lines (no sgm client code), and the
headers they expect are assembled in this file from the ``mining.notify`` text alone.
Valid nonces are found by brute force with hashlib at an easy share difficulty.

No test here bounds how fast anything happens: waits have generous deadlines and the
assertions are about order and counts.

Sections follow the package: template, records, shares, server, thread.
"""
import ast
import hashlib
import json
import pathlib
import socket
import struct
import time

import pytest

import sgm.jobs
from sgm.bitcoin import parse_bip34_height
from sgm.hashing import difficulty_to_target
from sgm.jobs import Job
from sgm.pool import DEFAULT_VERSION, LocalPool, PoolThread, build_coinbase_parts, start_in_thread
from sgm.pool.records import KEEP_ACCEPTED_SHARES, MAX_TRACKED_WORKERS, OTHER_WORKERS, AcceptedShare, Ledger
from sgm.pool.shares import VERSION_READINGS, read_version
from sgm.pool.template import stratum_prevhash
from sgm.solo.block import Tx
from sgm.stratum.messages import MAX_LINE_BYTES
from tests.conftest import wait_until

DEADLINE = 30.0          # generous: the machine running the tests may be loaded
MASK = 0x1FFFE000        # BIP 320's general-purpose bits, the pool's default mask
REGTEST_VERSION = 0x30000000   # Bitcoin Core regtest's template version: bit 28 is inside MASK


def dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


class Raw:
    """A bare-socket Stratum client: no sgm code on this side of the wire."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
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
        """Send a request and return its reply; notifications that arrive first are kept."""
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
        """The next notification of ``method`` (waiting for it if needed)."""
        for i, msg in enumerate(self.notes):
            if msg["method"] == method:
                return self.notes.pop(i)
        while True:
            msg = self.recv()
            if msg.get("method") == method:
                return msg
            if msg.get("method"):
                self.notes.append(msg)

    def sync(self) -> None:
        """Everything the pool queued for us before now has arrived (a reply comes after it)."""
        self.call("mining.extranonce.subscribe", [])

    def is_closed(self) -> bool:
        """True once the pool closes the connection; False if it stays open past DEADLINE."""
        try:
            while True:
                if not self.file.readline():
                    return True
        except TimeoutError:
            return False
        except (ConnectionError, OSError):
            return True

    def login(self, worker: str = "w1", mask: str | None = None) -> tuple[str, int, list, float]:
        """configure (when ``mask``), subscribe, authorize; (extranonce1, en2 size, notify, diff)."""
        if mask is not None:
            assert self.call("mining.configure", [["version-rolling"], {"version-rolling.mask": mask}])["result"]
        sub = self.call("mining.subscribe", ["raw-test"])["result"]
        assert self.call("mining.authorize", [worker, "x"])["result"] is True
        diff = self.note("mining.set_difficulty")["params"][0]
        notify = self.note("mining.notify")["params"]
        return sub[1], sub[2], notify, diff

    def submit(self, worker: str, notify: list, en2: str, nonce: int, vb: int | None = None) -> dict:
        params = [worker, notify[0], en2, notify[7], f"{nonce:08x}"]
        if vb is not None:
            params.append(f"{vb:08x}")
        return self.call("mining.submit", params)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def header_of(notify: list, en1: str, en2: str, nonce: int, version: int | None = None) -> bytes:
    """Independent header assembly straight from the notify text (``version`` overrides)."""
    _job_id, prev, cb1, cb2, branch, ver, nbits, ntime = notify[:8]
    h = dsha(bytes.fromhex(cb1 + en1 + en2 + cb2))
    for b in branch:
        h = dsha(h + bytes.fromhex(b))
    prev_bytes = b"".join(bytes.fromhex(prev)[i:i + 4][::-1] for i in range(0, 32, 4))
    return (struct.pack("<I", int(ver, 16) if version is None else version) + prev_bytes + h
            + struct.pack("<III", int(ntime, 16), int(nbits, 16), nonce))


def hits(header: bytes, target: int) -> bool:
    return int.from_bytes(dsha(header), "little") <= target


def search(notify: list, en1: str, en2: str, target: int, *, version: int | None = None,
           misses: tuple[int, ...] = (), want_hit: bool = True) -> int:
    """A nonce whose header (with ``version``) meets ``target`` (or not, with want_hit=False)
    and whose headers with each version in ``misses`` do not."""
    for nonce in range(1 << 20):
        if hits(header_of(notify, en1, en2, nonce, version), target) != want_hit:
            continue
        if not any(hits(header_of(notify, en1, en2, nonce, v), target) for v in misses):
            return nonce
    raise AssertionError("no suitable nonce found")


@pytest.fixture
def pool():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=3600) as p:
        yield p


@pytest.fixture
def regtest_pool(request):
    """A pool whose jobs carry version 0x30000000, reading version bits as parametrized."""
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=3600, version=REGTEST_VERSION,
                    version_reading=request.param) as p:
        yield p


# =========================================================================== template
@pytest.mark.parametrize("height, prefix", [
    (1, "51"), (16, "60"),                 # OP_1, OP_16: Bitcoin Core refuses 01 01 / 01 10
    (17, "0111"), (0x80, "028000"),        # 0x80 needs a sign byte
    (900_000, "03a0bb0d"),
])
def test_the_coinbase_starts_with_the_bip34_height_as_core_checks_it(height, prefix):
    coinb1, _ = build_coinbase_parts(height, 8)
    # version 2, one input, the null prevout, then the scriptSig length and the height
    script_sig_start = coinb1[4 + 1 + 36 + 1:]
    assert script_sig_start.hex().startswith(prefix)
    assert coinb1.endswith(bytes.fromhex(prefix) + bytes([8]))   # then the extranonce push


@pytest.mark.parametrize("height", [1, 16])
def test_a_pool_at_a_low_height_sends_a_coinbase_a_node_accepts(height):
    """Over the wire: a job at height 1..16 carries the height as Bitcoin Core's BIP 34
    check wants it, the single opcode OP_N (the pool used to push "01 0N")."""
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=3600, start_height=height) as p:
        c = Raw(p.port)
        en1, size, notify, _ = c.login()
        c.close()
    coinbase = Tx.parse(bytes.fromhex(notify[2] + en1 + "00" * size + notify[3]))
    assert coinbase.inputs[0].script_sig[0] == 0x50 + height
    assert parse_bip34_height(coinbase.inputs[0].script_sig) == height


def test_the_coinbase_size_limits_are_enforced():
    with pytest.raises(ValueError):
        build_coinbase_parts(1, 0)
    with pytest.raises(ValueError):
        build_coinbase_parts(1, 76)


def parse_coinbase(tx: bytes) -> dict:
    pos = 0

    def take(n):
        nonlocal pos
        out = tx[pos:pos + n]
        assert len(out) == n, "coinbase ends early"
        pos += n
        return out

    def compact():
        first = take(1)[0]
        return first if first < 0xFD else int.from_bytes(take({0xFD: 2, 0xFE: 4, 0xFF: 8}[first]), "little")

    out = {"version": struct.unpack("<I", take(4))[0], "inputs": compact()}
    out["prevout"] = take(36)
    out["script_sig"] = take(compact())
    out["sequence"] = take(4)
    n_out = compact()
    out["outputs"] = [(struct.unpack("<Q", take(8))[0], take(compact())) for _ in range(n_out)]
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
    assert header_of(notify, en1, en2, 5)[36:68] == level[0]
    job = Job.from_notify(notify, extranonce1=en1, extranonce2_size=size, target=1)
    assert job.merkle_root(bytes.fromhex(en2)) == level[0]
    c.close()


def test_notify_sends_the_prevhash_word_swapped_and_the_job_version(pool):
    c = Raw(pool.port)
    en1, _, notify, _ = c.login()
    pjob = pool.current_job()
    assert notify[1] == stratum_prevhash(pjob.prevhash)
    words = [notify[1][i:i + 8] for i in range(0, 64, 8)]
    assert b"".join(bytes.fromhex(w)[::-1] for w in words) == pjob.prevhash
    # internal order: a block hash has its zero bytes at the end, so the display hex starts with them
    assert pjob.prevhash[::-1].hex().startswith("0" * 16)
    assert header_of(notify, en1, "00000000", 0)[4:36] == pjob.prevhash
    assert notify[5] == f"{DEFAULT_VERSION:08x}" == "20000000"
    c.close()


def test_the_job_version_is_an_option_and_can_change_with_a_new_job():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=3600, version=REGTEST_VERSION) as p:
        c = Raw(p.port)
        _, _, notify, _ = c.login()
        assert notify[5] == "30000000" and p.pool.job_version == REGTEST_VERSION
        p.new_job(clean=True, version=0x20000004)
        assert c.note("mining.notify")["params"][5] == "20000004"
        c.close()
    with pytest.raises(ValueError):
        LocalPool(version=1 << 32)
    with pytest.raises(TypeError):
        LocalPool(version="30000000")


# ============================================================================ records
def test_accepted_rejected_and_stale_counts_are_exact_per_worker(pool):
    c = Raw(pool.port)
    en1, _, notify, diff = c.login("alice")
    assert c.call("mining.authorize", ["bob", "x"])["result"] is True
    target = difficulty_to_target(diff)
    good = search(notify, en1, "00000001", target)
    low = search(notify, en1, "00000001", target, want_hit=False)
    assert c.submit("alice", notify, "00000001", good)["result"] is True
    assert c.submit("alice", notify, "00000001", good)["error"][0] == 22
    assert c.submit("bob", notify, "00000001", low)["error"][0] == 23
    assert c.submit("mallory", notify, "00000001", good)["error"][0] == 24  # not authorized here
    stale_nonce = search(notify, en1, "00000002", target)
    pool.new_job(clean=True)
    assert c.submit("bob", notify, "00000002", stale_nonce)["error"][0] == 21
    s = pool.stats
    assert s.accepted == 1 and s.rejected_total == 4 and s.submitted == 5 and s.stale == 1
    assert s.rejected == {"duplicate": 1, "low difficulty": 1, "unauthorized": 1, "stale": 1}
    assert (s.workers["alice"].accepted, s.workers["alice"].rejected) == (1, 1)
    assert s.workers["alice"].rejected_reasons == {"duplicate": 1}
    assert (s.workers["bob"].accepted, s.workers["bob"].rejected, s.workers["bob"].stale) == (0, 2, 1)
    assert s.workers["bob"].rejected_reasons == {"low difficulty": 1, "stale": 1}
    assert "mallory" not in s.workers
    c.close()


def test_stats_are_a_snapshot_not_a_live_view(pool):
    before = pool.stats
    before.accepted = 99
    before.rejected["x"] = 1
    assert pool.stats.accepted == 0 and pool.stats.rejected == {}


def _share(i: int, worker: str = "w") -> AcceptedShare:
    return AcceptedShare("1", worker, "00", "00", "00", f"{i:08x}", None, b"", b"\x00" * 32, 1.0 + i)


def test_the_ledger_stays_bounded():
    ledger = Ledger()
    n = 3 * KEEP_ACCEPTED_SHARES
    for i in range(n):
        ledger.accept(_share(i))
    s = ledger.snapshot()
    assert s.accepted == n and s.workers["w"].accepted == n
    assert KEEP_ACCEPTED_SHARES // 2 <= len(s.accepted_shares) <= KEEP_ACCEPTED_SHARES
    assert s.accepted_shares[-1].nonce == f"{n - 1:08x}"      # the latest are kept
    for i in range(MAX_TRACKED_WORKERS + 10):
        ledger.reject("low difficulty", f"worker{i}")
    ledger.reject("no such reason", None)
    s = ledger.snapshot()
    assert len(s.workers) == MAX_TRACKED_WORKERS + 1            # + the OTHER_WORKERS row
    # "w" took a row, so worker<MAX-1> .. worker<MAX+9> share the OTHER_WORKERS row
    assert s.workers[OTHER_WORKERS].rejected == 11
    assert sum(w.rejected for w in s.workers.values()) == MAX_TRACKED_WORKERS + 10
    assert s.rejected == {"low difficulty": MAX_TRACKED_WORKERS + 10, "other": 1}


# ============================================================================= shares
def test_the_share_check_does_not_import_the_miners_header_code():
    pkg = pathlib.Path(__file__).resolve().parents[1] / "sgm" / "pool"
    for path in pkg.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "sgm.jobs", path.name
            elif isinstance(node, ast.Import):
                assert all(a.name != "sgm.jobs" for a in node.names), path.name


@pytest.mark.parametrize("version", [REGTEST_VERSION, 0x20000000])
def test_a_real_share_is_accepted_and_its_header_equals_the_one_sgm_jobs_builds(version):
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=3600, version=version) as pool:
        _check_pool_header_against_sgm_jobs(pool)


def _check_pool_header_against_sgm_jobs(pool):
    c = Raw(pool.port)
    en1, size, notify, diff = c.login("alice", mask="ffffffff")
    target = difficulty_to_target(diff)
    vb = 0x0ABCE000                                   # BIP 310: clears the job's bit 28
    version = (int(notify[5], 16) & ~MASK) | vb
    assert version == 0x2ABCE000
    nonce = search(notify, en1, "00000007", target, version=version)
    assert c.submit("alice", notify, "00000007", nonce, vb)["result"] is True
    plain = search(notify, en1, "00000008", target)
    assert c.submit("alice", notify, "00000008", plain)["result"] is True
    rolled_share, plain_share = pool.stats.accepted_shares
    # cross-check in the test: the pool's own header == the miner's header code == this file's
    job = Job.from_notify(notify, extranonce1=en1, extranonce2_size=size, target=target, version_mask=MASK)
    assert rolled_share.header == header_of(notify, en1, "00000007", nonce, version)
    if job.rolls_version:
        assert rolled_share.header == job.header(bytes.fromhex("00000007"), nonce, vb)
    else:   # a job bit inside the mask: sgm itself never rolls such a job (readings differ)
        with pytest.raises(ValueError, match="does not roll"):
            job.header(bytes.fromhex("00000007"), nonce, vb)
    assert plain_share.header == job.header(bytes.fromhex("00000008"), plain) \
        == header_of(notify, en1, "00000008", plain)
    assert rolled_share.hash == dsha(rolled_share.header) and rolled_share.version == version
    assert (rolled_share.job_id, rolled_share.nonce, rolled_share.extranonce1, rolled_share.extranonce2,
            rolled_share.version_bits) == (notify[0], f"{nonce:08x}", en1, "00000007", f"{vb:08x}")
    assert plain_share.version_bits is None and plain_share.version == int(notify[5], 16)
    assert pool.stats.best_share_difficulty == max(rolled_share.difficulty, plain_share.difficulty) > 0
    c.close()


def test_a_byte_order_mistake_in_sgm_jobs_is_caught_by_the_pool(pool, monkeypatch):
    """The pool does not share the miner's header code, so a miner bug gets its shares
    refused instead of confirmed: here sgm.jobs forgets to word-swap the prevhash."""
    c = Raw(pool.port)
    en1, size, notify, diff = c.login()
    target = difficulty_to_target(diff)
    monkeypatch.setattr(sgm.jobs, "word_swap", lambda data: bytes(data))
    buggy = Job.from_notify(notify, extranonce1=en1, extranonce2_size=size, target=target)
    en2 = bytes.fromhex("00000003")
    nonce = next(n for n in range(1 << 20)
                 if hits(buggy.header(en2, n), target) and not hits(header_of(notify, en1, "00000003", n), target))
    res = c.submit("w1", notify, "00000003", nonce)
    assert res["result"] is False and res["error"][0] == 23
    assert pool.stats.rejected == {"low difficulty": 1}
    c.close()


#: The three ways pools read mining.submit's version bits, as this specification states them.
READINGS = {
    "bip310": lambda job, bits, mask: (job & ~mask) | (bits & mask),   # BIP 310's text
    "ckpool": lambda job, bits, mask: job | bits,                      # ckpool
    "xor": lambda job, bits, mask: job ^ bits,                         # public-pool, ESP-Miner
}

#: (reading, version bits sent, header version the miner hashed, accepted?) on a
#: 0x30000000 job (bit 28 inside the mask): each reading accepts bits computed its own way
#: and refuses bits another pool family would have read as the same header.
VERSION_CASES = [
    ("bip310", 0x1000E000, 0x3000E000, True),    # mask bits come from the bits: bit 28 kept ...
    ("bip310", 0x0000E000, 0x2000E000, True),    # ... or cleared
    ("bip310", 0x0000E000, 0x3000E000, False),   # an XOR delta read as bits: bit 28 cleared
    ("ckpool", 0x0000E000, 0x3000E000, True),    # OR: the job's bits stay set
    ("ckpool", 0x1000E000, 0x3000E000, True),
    ("ckpool", 0x0000E000, 0x2000E000, False),   # a BIP 310 miner clearing bit 28: ckpool keeps it
    ("xor", 0x0000E000, 0x3000E000, True),       # XOR delta
    ("xor", 0x1000E000, 0x2000E000, True),       # a delta flipping bit 28 off
    ("xor", 0x1000E000, 0x3000E000, False),      # BIP 310 bits read as a delta: bit 28 flipped off
]


def test_the_readings_table_agrees_with_the_stated_formulas_and_the_pools_arithmetic():
    for reading, bits, hashed, accepted in VERSION_CASES:
        assert (READINGS[reading](REGTEST_VERSION, bits, MASK) == hashed) == accepted
        assert read_version(reading, REGTEST_VERSION, bits, MASK) == READINGS[reading](REGTEST_VERSION, bits, MASK)
    assert set(VERSION_READINGS) == set(READINGS)
    # with no job bit inside the mask the three readings agree (BIP 310 miners and pools interoperate)
    for bits in (0, 0x0000E000, 0x1FFFE000, 0x12345000 & MASK):
        assert len({read_version(r, DEFAULT_VERSION, bits, MASK) for r in VERSION_READINGS}) == 1


@pytest.mark.parametrize("regtest_pool,bits,hashed,accepted", VERSION_CASES, indirect=["regtest_pool"],
                         ids=[f"{r}-{b:08x}-{h:08x}-{'ok' if a else 'refused'}" for r, b, h, a in VERSION_CASES])
def test_each_version_reading_accepts_its_own_bits_and_refuses_another_familys(regtest_pool, bits, hashed, accepted):
    reading = regtest_pool.pool.version_reading
    c = Raw(regtest_pool.port)
    en1, _, notify, diff = c.login("w", mask="1fffe000")
    assert notify[5] == "30000000"
    target = difficulty_to_target(diff)
    pool_reads = READINGS[reading](REGTEST_VERSION, bits, MASK)
    nonce = search(notify, en1, "00000001", target, version=hashed,
                   misses=() if pool_reads == hashed else (pool_reads,))
    res = c.submit("w", notify, "00000001", nonce, bits)
    if accepted:
        assert res["result"] is True and res["error"] is None
        (share,) = regtest_pool.stats.accepted_shares
        assert share.version == hashed and share.header == header_of(notify, en1, "00000001", nonce, hashed)
    else:
        assert res["result"] is False and res["error"][0] == 23
        assert regtest_pool.stats.rejected == {"low difficulty": 1}
    c.close()


@pytest.mark.parametrize("regtest_pool", VERSION_READINGS, indirect=True)
def test_under_every_reading_no_sixth_parameter_means_the_job_version_and_outside_bits_are_refused(regtest_pool):
    c = Raw(regtest_pool.port)
    en1, _, notify, diff = c.login("w", mask="1fffe000")
    target = difficulty_to_target(diff)
    nonce = search(notify, en1, "00000001", target, version=REGTEST_VERSION)
    assert c.submit("w", notify, "00000001", nonce)["result"] is True
    assert regtest_pool.stats.accepted_shares[-1].version == REGTEST_VERSION
    for outside in (0x40000000, 0x00001000, 0xE0000000 | 0x2000):
        res = c.submit("w", notify, "00000002", nonce, outside)
        assert res["result"] is False and res["error"][0] == 20 and "mask" in res["error"][1]
    assert regtest_pool.stats.rejected == {"invalid version bits": 3}
    c.close()


def test_an_unknown_version_reading_is_refused():
    with pytest.raises(ValueError, match="bip310"):
        LocalPool(version_reading="bip320")
    assert LocalPool().version_reading == "bip310"


# ============================================================================= server
def test_only_loopback_is_bound():
    with pytest.raises(ValueError, match="127.0.0.1"):
        LocalPool(host="0.0.0.0")
    with PoolThread(difficulty_bits=8, jobs=1, job_interval=3600) as p:
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
    assert abs(job.ntime - time.time()) < 3600
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
    res = c.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "xyz"}])
    assert res["result"] is None and res["error"][0] == 20
    c.close()


def test_set_version_mask_reaches_rolling_clients_and_narrows_what_is_accepted():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=3600, version=REGTEST_VERSION) as p:
        roller = Raw(p.port)
        en1, _, notify, diff = roller.login("r", mask="ffffffff")          # granted 1fffe000
        narrow = Raw(p.port)
        narrow.login("n", mask="0000e000")                                   # granted 0000e000
        plain = Raw(p.port)
        plain.login("p")                                                     # no version rolling
        target = difficulty_to_target(diff)
        vb = 0x11000000                                   # bits 28 and 24: inside 1fffe000
        version = (REGTEST_VERSION & ~MASK) | vb          # 0x31000000 (BIP 310 reading)
        before = search(notify, en1, "00000001", target, version=version)
        assert roller.submit("r", notify, "00000001", before, vb)["result"] is True

        assert p.set_version_mask(0x00FFE000) == 2
        assert roller.note("mining.set_version_mask")["params"] == ["00ffe000"]
        assert narrow.note("mining.set_version_mask")["params"] == ["0000e000"]  # within what it asked
        plain.sync()
        assert not [n for n in plain.notes if n["method"] == "mining.set_version_mask"]

        # the same rolled bits, valid a moment ago, are now outside the mask
        after = search(notify, en1, "00000002", target, version=version)
        res = roller.submit("r", notify, "00000002", after, vb)
        assert res["result"] is False and res["error"][0] == 20 and "mask" in res["error"][1]
        # bits inside the new mask are fine; bit 28 of the job now lies outside it and stays set
        vb2 = 0x00F0E000
        inside = search(notify, en1, "00000003", target, version=REGTEST_VERSION | vb2)
        assert roller.submit("r", notify, "00000003", inside, vb2)["result"] is True
        s = p.stats
        assert s.accepted == 2 and s.rejected == {"invalid version bits": 1} and s.version_mask_changes == 1
        assert s.accepted_shares[-1].version == 0x30F0E000
        # a client configuring now is granted at most the new mask
        late = Raw(p.port)
        res = late.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff"}])
        assert res["result"] == {"version-rolling": True, "version-rolling.mask": "00ffe000"}
        # widening again: each rolling client gets the new mask within what it asked for
        assert p.set_version_mask(MASK) == 3
        assert roller.note("mining.set_version_mask")["params"] == ["1fffe000"]
        assert narrow.note("mining.set_version_mask")["params"] == ["0000e000"]
        assert late.note("mining.set_version_mask")["params"] == ["1fffe000"]
        for c in (roller, narrow, plain, late):
            c.close()


def test_a_new_difficulty_binds_new_jobs_and_older_jobs_keep_the_easier_target(pool):
    """As ckpool does: a share of a job issued before the change may already have been on
    the wire, so it is judged by the easier target; shares of later jobs by the new one."""
    c = Raw(pool.port)
    en1, _, notify, diff = c.login()
    harder = diff * 256
    old_target, new_target = difficulty_to_target(diff), difficulty_to_target(harder)
    easy_only = next(n for n in range(1 << 20) if hits(header_of(notify, en1, "00000001", n), old_target)
                     and not hits(header_of(notify, en1, "00000001", n), new_target))
    pool.set_difficulty(harder)
    assert c.note("mining.set_difficulty")["params"] == [harder]
    assert c.submit("w1", notify, "00000001", easy_only)["result"] is True     # older job
    pool.new_job(clean=False)
    later = c.note("mining.notify")["params"]
    easy_later = next(n for n in range(1 << 20) if hits(header_of(later, en1, "00000003", n), old_target)
                      and not hits(header_of(later, en1, "00000003", n), new_target))
    assert c.submit("w1", later, "00000003", easy_later)["error"][0] == 23
    hard = search(later, en1, "00000004", new_target)
    assert c.submit("w1", later, "00000004", hard)["result"] is True
    with pytest.raises(ValueError):
        pool.set_difficulty(0)
    c.close()


def test_disconnect_all_closes_every_client_and_new_ones_are_served(pool):
    a, b = Raw(pool.port), Raw(pool.port)
    a.login("a")
    b.call("mining.subscribe", [])
    assert pool.disconnect_all() == 2
    assert a.is_closed() and b.is_closed()
    c = Raw(pool.port)
    c.login("c")
    assert wait_until(lambda: pool.stats.connections == 1)
    assert pool.stats.connections_total == 3
    for x in (a, b, c):
        x.close()


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
        ([["w"], job_id, "00000000", ntime, "00000000"], 24),             # worker not a string
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
    assert stats.rejected == {"not subscribed": 1, "unauthorized": 3, "malformed": 6, "job not found": 1,
                              "invalid version bits": 1}
    c.close()


def test_stale_job_after_a_clean_job(pool):
    c = Raw(pool.port)
    en1, _, notify, diff = c.login()
    nonce = search(notify, en1, "00000001", difficulty_to_target(diff))
    pool.new_job(clean=True)
    fresh = c.note("mining.notify")["params"]
    assert fresh[8] is True and fresh[0] != notify[0] and fresh[1] != notify[1]
    res = c.submit("w1", notify, "00000001", nonce)
    assert res["error"][0] == 21 and "stale" in res["error"][1]
    assert pool.stats.rejected == {"stale": 1}
    c.close()


def test_non_clean_jobs_keep_older_jobs_valid_until_eight_newer_ones(pool):
    c = Raw(pool.port)
    en1, _, first, diff = c.login()
    target = difficulty_to_target(diff)
    pool.new_job(clean=False)
    second = c.note("mining.notify")["params"]
    assert second[8] is False and second[1] == first[1] and second[0] != first[0]  # same block, new txs
    for _ in range(6):
        pool.new_job(clean=False)
    n1 = search(first, en1, "00000001", target)
    assert c.submit("w1", first, "00000001", n1)["result"] is True       # 7 newer jobs: still valid
    pool.new_job(clean=False)
    n2 = search(first, en1, "00000002", target)
    res = c.submit("w1", first, "00000002", n2)
    assert res["error"][0] == 21 and "stale" in res["error"][1]           # 8 newer: retired
    c.close()


def test_stale_grace_accepts_shares_for_a_just_replaced_job():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=3600, stale_grace=600.0) as p:
        c = Raw(p.port)
        en1, _, notify, diff = c.login()
        target = difficulty_to_target(diff)
        nonce = search(notify, en1, "00000001", target)
        p.new_job(clean=True)
        assert c.note("mining.notify")["params"][8] is True
        assert c.submit("w1", notify, "00000001", nonce)["result"] is True
        assert c.submit("w1", notify, "00000001", nonce)["error"][0] == 22
        low = search(notify, en1, "00000001", target, want_hit=False)
        assert c.submit("w1", notify, "00000001", low)["error"][0] == 23
        s = p.stats
        assert s.accepted == 1 and s.accepted_after_replace == 1 and s.workers["w1"].accepted_after_replace == 1
        c.close()


# ---------------------------------------------------------------------- robustness
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


def test_odd_parameter_shapes_get_error_replies(pool):
    c = Raw(pool.port)
    for method, params in [("mining.authorize", []), ("mining.authorize", [7]),
                           ("mining.authorize", ["x" * 300]), ("mining.configure", []),
                           ("mining.configure", ["version-rolling"]),
                           ("mining.configure", [["version-rolling"], {"version-rolling.mask": 5}])]:
        res = c.call(method, params)
        assert res["result"] is None and res["error"][0] == 20, (method, params)
    for i in range(64):
        assert c.call("mining.authorize", [f"w{i}", "x"])["result"] is True
    res = c.call("mining.authorize", ["one-too-many", "x"])
    assert res["error"][0] == 24                    # bounded: workers per connection
    assert c.call("mining.subscribe", [])["error"] is None
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
        s = socket.create_connection(("127.0.0.1", pool.port), timeout=DEADLINE)
        s.sendall(b'{"id":1,"method":"mining.subscr')
        s.close()
    c = Raw(pool.port)
    assert c.call("mining.subscribe", [])["error"] is None
    c.close()


# ============================================================================= thread
def test_jobs_on_the_timer_then_finished_and_no_more_jobs():
    with PoolThread(difficulty_bits=8, jobs=3, job_interval=1.0, clean_jobs=True) as p:
        c = Raw(p.port)
        en1, _, first, diff = c.login()
        assert p.wait_finished(DEADLINE)
        notifies = [first]
        while True:                                 # every job issued after login, then the message
            msg = c.notes.pop(0) if c.notes else c.recv()
            if msg["method"] == "client.show_message":
                assert "3 jobs done" in msg["params"][0]
                break
            assert msg["method"] == "mining.notify"
            notifies.append(msg["params"])
        # the client saw the job current at login and every later one, in order: ids 1, 2, 3
        ids = [int(n[0], 16) for n in notifies]
        assert ids == list(range(ids[0], 4))
        assert all(n[8] is True for n in notifies) and len({n[1] for n in notifies}) == len(notifies)
        assert wait_until(lambda: not p.timer_running)
        assert p.stats.jobs_issued == 3             # the timer is done: no job after the last one
        # submits are still served after finishing, and no notify slipped in
        nonce = search(notifies[-1], en1, "00000000", difficulty_to_target(diff))
        assert c.submit("w1", notifies[-1], "00000000", nonce)["result"] is True
        assert c.notes == []
        c.close()


def test_non_clean_jobs_on_the_timer_keep_the_block():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=0.2, clean_jobs=False) as p:
        c = Raw(p.port)
        _, _, first, _ = c.login()
        second = c.note("mining.notify")["params"]
        assert first[8] is True and second[8] is False       # the login job is always clean
        assert second[1] == first[1] and int(second[0], 16) > int(first[0], 16)
        assert not p.finished
        c.close()


def test_start_in_thread_runs_and_stops_a_pool():
    p = start_in_thread(difficulty_bits=8, jobs=None, job_interval=3600)
    try:
        c = Raw(p.port)
        assert c.call("mining.subscribe", [])["error"] is None
        c.close()
    finally:
        p.stop()
    with pytest.raises(ConnectionError):
        socket.create_connection(("127.0.0.1", p.port), timeout=DEADLINE)


def test_a_pool_that_cannot_start_says_why():
    with pytest.raises(RuntimeError, match="jobs"):
        PoolThread(jobs=0).start()
