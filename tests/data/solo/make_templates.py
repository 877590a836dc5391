"""Write the recorded getblocktemplate answers the solo tests mine (run from the repo root:
``python tests/data/solo/make_templates.py``; the output is committed and deterministic).

* ``core_regtest_template.json`` -- Bitcoin Core's field layout (regtest, segwit active):
  segwit spends (P2WPKH, P2WSH 2-of-3, P2TR key path) and a legacy P2PKH spend, one
  transaction depending on another, ``txid`` / ``hash`` (wtxid) per transaction, and
  ``default_witness_commitment`` as the full output script ``6a24aa21a9ed…``.
* ``btcd_simnet_template.json`` -- btcd's layout: ``hash`` is the txid, no ``txid`` field,
  ``coinbaseaux.flags``, ``maxtime``, and the *bare* 32-byte ``default_witness_commitment``.
* ``btcd_regtest_empty.json`` -- btcd on regtest with an empty mempool, segwit active:
  its ``getblocktemplate`` answer (no ``rules``, no ``default_witness_commitment``: btcd
  sends the commitment only when a template transaction has a witness) and its
  ``getblockchaininfo`` answer (segwit under ``bip9_softforks``).

Written independently of sgm (hashlib and struct only), so the tests compare sgm's work
against values it did not compute.  Signatures and keys are well-formed (DER, 33-byte
points) but made up: the tests check block structure, not scripts.
"""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def h(tag: str, n: int = 32) -> bytes:
    """Deterministic pseudo-random bytes."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{tag}/{i}".encode()).digest()
        i += 1
    return out[:n]


def cs(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    return b"\xfe" + struct.pack("<I", n)


def der_sig(tag: str) -> bytes:
    r = b"\x00" + h(tag + "r", 32)   # a leading 0x00: r with its high bit set
    s = h(tag + "s", 32)
    s = bytes([s[0] & 0x7F]) + s[1:]
    body = b"\x02" + bytes([len(r)]) + r + b"\x02" + bytes([len(s)]) + s
    return b"\x30" + bytes([len(body)]) + body + b"\x01"    # SIGHASH_ALL


def pubkey(tag: str) -> bytes:
    return b"\x02" + h(tag + "pk", 32)


def tx(inputs, outputs, witnesses=None, version=2, locktime=0) -> bytes:
    """inputs: (prev_txid_internal, vout, scriptSig, sequence); outputs: (value, script)."""
    body = cs(len(inputs)) + b"".join(p + struct.pack("<I", i) + cs(len(ss)) + ss
                                      + struct.pack("<I", seq) for p, i, ss, seq in inputs)
    body += cs(len(outputs)) + b"".join(struct.pack("<q", v) + cs(len(s)) + s for v, s in outputs)
    ver, lock = struct.pack("<i", version), struct.pack("<I", locktime)
    if not witnesses:
        return ver + body + lock
    wit = b"".join(cs(len(stack)) + b"".join(cs(len(it)) + it for it in stack)
                   for stack in witnesses)
    return ver + b"\x00\x01" + body + wit + lock


def strip_witness(raw: bytes, n_in_out: tuple) -> bytes:
    """The same transaction without marker, flag and witnesses (for the txid)."""
    if raw[4:6] != b"\x00\x01":
        return raw
    ins, outs = n_in_out
    return tx(ins, outs, None, struct.unpack("<i", raw[:4])[0], struct.unpack("<I", raw[-4:])[0])


def p2wpkh(tag):
    return b"\x00\x14" + h(tag, 20)


def p2tr(tag):
    return b"\x51\x20" + h(tag, 32)


def p2pkh(tag):
    return b"\x76\xa9\x14" + h(tag, 20) + b"\x88\xac"


def merkle(hashes):
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [dsha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def build_transactions(height: int):
    """[(raw, txid_internal, wtxid_internal, fee, sigops, weight, depends)]"""
    seq_rbf = 0xFFFFFFFD
    out = []

    def add(ins, outs, wits, fee, sigops, depends=()):
        raw = tx(ins, outs, wits, locktime=height - 1)
        base = strip_witness(raw, (ins, outs))
        weight = len(base) * 3 + len(raw)
        out.append((raw, dsha(base), dsha(raw), fee, sigops, weight, list(depends)))

    # 1: P2WPKH spend -> P2WPKH + P2TR change
    add([(h("funding-a"), 0, b"", seq_rbf)],
        [(150_000_000, p2wpkh("alice")), (849_985_900, p2tr("change-a"))],
        [[der_sig("a"), pubkey("a")]], fee=14_100, sigops=1)
    # 2: legacy P2PKH spend (no witness)
    ss = cs(len(der_sig("b"))) + der_sig("b") + cs(33) + pubkey("b")
    add([(h("funding-b"), 1, ss, 0xFFFFFFFE)],
        [(20_000_000, p2pkh("bob")), (79_977_400, p2pkh("change-b"))],
        None, fee=22_600, sigops=8)
    # 3: P2WSH 2-of-3 multisig spend (witness: empty item, 2 sigs, the script)
    ms = b"\x52" + b"".join(b"\x21" + pubkey(f"m{i}") for i in range(3)) + b"\x53\xae"
    add([(h("funding-c"), 2, b"", seq_rbf)],
        [(499_990_000, b"\x00\x20" + hashlib.sha256(ms).digest())],
        [[b"", der_sig("c1"), der_sig("c2"), ms]], fee=10_000, sigops=3)
    # 4: spends output 1 of transaction 1 (P2TR key path: one 64-byte Schnorr signature)
    first_txid = out[0][1]
    add([(first_txid, 1, b"", seq_rbf)],
        [(849_975_900, p2wpkh("carol"))],
        [[h("schnorr", 64)]], fee=10_000, sigops=0, depends=[1])
    # 5: two inputs, one legacy one segwit (mixed witness: an empty stack for the legacy one)
    ss5 = cs(len(der_sig("d"))) + der_sig("d") + cs(33) + pubkey("d")
    add([(h("funding-d"), 0, ss5, 0xFFFFFFFF), (h("funding-e"), 3, b"", 0xFFFFFFFF)],
        [(300_000_000, p2wpkh("dave")), (12_345_678, p2pkh("erin"))],
        [[], [der_sig("e"), pubkey("e")]], fee=31_000, sigops=5)
    return out


def core_template() -> dict:
    height = 213
    txs = build_transactions(height)
    fees = sum(t[3] for t in txs)
    subsidy = 50_0000_0000 >> (height // 150)      # regtest halves every 150 blocks
    wroot = merkle([bytes(32)] + [t[2] for t in txs])
    commitment = dsha(wroot + bytes(32))
    prev = dsha(b"regtest block 212")
    return {
        "capabilities": ["proposal"],
        "version": 536870912,
        "rules": ["csv", "!segwit", "taproot"],
        "vbavailable": {},
        "vbrequired": 0,
        "previousblockhash": prev[::-1].hex(),
        "transactions": [
            {"data": raw.hex(), "txid": txid[::-1].hex(), "hash": wtxid[::-1].hex(),
             "depends": dep, "fee": fee, "sigops": sigops, "weight": weight}
            for raw, txid, wtxid, fee, sigops, weight, dep in txs
        ],
        "coinbaseaux": {},
        "coinbasevalue": subsidy + fees,
        "longpollid": prev[::-1].hex() + "17",
        "target": "7fffff0000000000000000000000000000000000000000000000000000000000",
        "mintime": 1733140001,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": 80000,
        "sizelimit": 4000000,
        "weightlimit": 4000000,
        "curtime": 1733143604,
        "bits": "207fffff",
        "height": height,
        "default_witness_commitment": ("6a24aa21a9ed" + commitment.hex()),
    }


def btcd_template() -> dict:
    height = 1042
    txs = build_transactions(height)
    fees = sum(t[3] for t in txs)
    subsidy = 50_0000_0000 >> (height // 210000)
    wroot = merkle([bytes(32)] + [t[2] for t in txs])
    commitment = dsha(wroot + bytes(32))
    prev = dsha(b"simnet block 1041")
    return {
        "bits": "207fffff",
        "curtime": 1733143777,
        "height": height,
        "previousblockhash": prev[::-1].hex(),
        "sigoplimit": 80000,
        "sizelimit": 4000000,
        "weightlimit": 4000000,
        "transactions": [
            {"data": raw.hex(), "hash": txid[::-1].hex(), "depends": dep, "fee": fee,
             "sigops": sigops, "weight": weight}
            for raw, txid, wtxid, fee, sigops, weight, dep in txs
        ],
        "version": 536870912,
        "coinbaseaux": {"flags": "0b2f503253482f627463642f"},
        "coinbasevalue": subsidy + fees,
        "longpollid": prev[::-1].hex() + "-1733143770",
        "target": "7fffff0000000000000000000000000000000000000000000000000000000000",
        "maxtime": 1733150977,
        "mintime": 1733140900,
        "mutable": ["time", "transactions/add", "prevblock", "coinbase/append"],
        "noncerange": "00000000ffffffff",
        "capabilities": ["proposal"],
        "default_witness_commitment": commitment.hex(),
    }


#: btcd sets a deployment's start and end from a zero Go time.Time on regtest ("always
#: available, never expires"), which its getblockchaininfo prints as this Unix time
GO_ZERO_TIME = -62135596800


def btcd_regtest_empty() -> dict:
    """btcd's two answers, in the field layout of its RPC result types (btcjson
    GetBlockTemplateResult and GetBlockChainInfoResult, filled as btcd's rpcserver.go
    handleGetBlockTemplate / handleGetBlockChainInfo do; values from its regtest chain
    parameters): written from that documented shape, not captured from a running btcd."""
    height = 1300
    prev = dsha(b"btcd regtest block 1299")
    tip_time = 1733300000
    bip9 = {name: {"status": status, "bit": bit, "startTime": 0,
                   "start_time": GO_ZERO_TIME, "timeout": GO_ZERO_TIME, "since": since,
                   "min_activation_height": min_height}
            for name, status, bit, since, min_height in (
                ("dummy", "active", 28, 432, 0),
                ("dummy-min-activation", "active", 22, 720, 600),
                ("dummy-always-active", "active", 30, 0, 0),
                ("csv", "active", 0, 432, 0),
                ("segwit", "active", 1, 432, 0),
                ("taproot", "active", 2, 432, 0))}
    return {
        "_note": ("btcd (github.com/btcsuite/btcd) on regtest, empty mempool, segwit active. "
                  "Field layout of btcd's RPC results (btcjson GetBlockTemplateResult, "
                  "GetBlockChainInfoResult) as its rpcserver.go fills them, values from its "
                  "regtest chain parameters; written by tests/data/solo/make_templates.py "
                  "from that documented shape, not captured from a running node. btcd's "
                  "getblockchaininfo has no 'softforks' key: GetBlockChainInfoResult "
                  "embeds two structs that both tag a field 'softforks', and Go's JSON "
                  "encoder drops such clashing fields; the super-majority forks are thus "
                  "not printed and the BIP 9 deployments are under 'bip9_softforks'."),
        "getblocktemplate": {
            "bits": "207fffff",
            "curtime": tip_time + 600,
            "height": height,
            "previousblockhash": prev[::-1].hex(),
            "sigoplimit": 80000,
            "sizelimit": 4000000,
            "weightlimit": 4000000,
            "transactions": [],
            "version": 536870912,
            "coinbaseaux": {"flags": "0b2f503253482f627463642f"},   # push of "/P2SH/btcd/"
            "coinbasevalue": 50_0000_0000 >> (height // 150),      # regtest halves every 150
            "longpollid": f"{prev[::-1].hex()}-{tip_time + 590}",
            "target": "7fffff0000000000000000000000000000000000000000000000000000000000",
            "maxtime": tip_time + 600 + 7200,
            "mintime": tip_time - 3000,
            "mutable": ["time", "transactions/add", "prevblock", "coinbase/append"],
            "noncerange": "00000000ffffffff",
            "capabilities": ["proposal"],
        },
        "getblockchaininfo": {
            "chain": "regtest",
            "blocks": height - 1,
            "headers": height - 1,
            "bestblockhash": prev[::-1].hex(),
            "difficulty": 4.656542373906925e-10,
            "mediantime": tip_time - 3000,
            "pruned": False,
            "warnings": "",
            "bip9_softforks": bip9,
        },
    }


def main() -> None:
    for name, tmpl in (("core_regtest_template.json", core_template()),
                       ("btcd_simnet_template.json", btcd_template())):
        (HERE / name).write_text(json.dumps(tmpl, indent=2) + "\n")
        print(f"wrote {name}: height {tmpl['height']}, {len(tmpl['transactions'])} transactions")
    (HERE / "btcd_regtest_empty.json").write_text(json.dumps(btcd_regtest_empty(), indent=2) + "\n")
    print("wrote btcd_regtest_empty.json: getblocktemplate + getblockchaininfo")


if __name__ == "__main__":
    main()
