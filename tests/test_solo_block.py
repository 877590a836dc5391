"""Blocks built from recorded templates, checked against the rules a node applies: BIP 34
height, witness commitment and reserved value, merkle root, proof of work, serialization.

The recorded templates (tests/data/solo) were written by make_templates.py with hashlib
alone; the checks here recompute what matters from the template's own fields.
"""
from __future__ import annotations

import copy
import hashlib
import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from sgm import _native
from sgm.bitcoin import bip34_height_script, merkle_root, parse_bip34_height
from sgm.jobs import Job, make_share, prepare_work, word_swap
from sgm.solo.address import address_script
from sgm.solo.block import Block, BlockError, Tx, check_block, find_witness_commitment
from sgm.solo.template import TemplateError, build_work, parse_template

DATA = Path(__file__).parent / "data" / "solo"
REGTEST_P2WPKH = "bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9"
REGTEST_P2TR = "bcrt1pfwxjqvtt4tcxrtdluukfmy2dv7xd2qzdfy6kajv5nwn4yam3wxkq3553uh"


def dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def mine(work, start: int = 0):
    """A share of ``work`` meeting its (regtest) target, found with the native scanner."""
    job = work.job
    prepared = prepare_work(job, 0)
    res = _native.scan(prepared.midstate, prepared.tail, start, 1 << 16, job.target)
    assert res.nonces, "no nonce in 65536 at the regtest target"
    share = make_share(job, prepared, res.nonces[0])
    assert share.meets_target
    return share


def mined_block(tmpl_json: dict, address: str = REGTEST_P2WPKH, **kw):
    tmpl = parse_template(tmpl_json)
    work = build_work(tmpl, address_script(address, "regtest"), job_id="t1", clean=True,
                      extranonce1=bytes.fromhex("a1b2c3d4"), **kw)
    share = mine(work)
    raw = bytes.fromhex(work.block_hex(share))
    return tmpl, work, share, raw


# ------------------------------------------------------------------------ Core's layout
def test_block_from_a_core_template_passes_every_rule_a_node_checks():
    tj = load("core_regtest_template.json")
    tmpl, work, share, raw = mined_block(tj)
    block = Block.parse(raw)
    # serialization round trip, witness serialization kept
    assert block.serialize() == raw
    assert Block.parse(block.serialize()).serialize() == raw
    # header: version, previous block, bits, time as the template says; PoW
    assert block.version == tj["version"]
    assert block.prev_hash == bytes.fromhex(tj["previousblockhash"])[::-1]
    assert block.bits == int(tj["bits"], 16) and block.time == tj["curtime"]
    target = int(tj["target"], 16)
    assert int.from_bytes(dsha(block.header), "little") <= target
    assert dsha(block.header) == share.hash
    # the template's transactions, verbatim and in order, after the coinbase
    assert [tx.serialize().hex() for tx in block.txs[1:]] == [t["data"] for t in tj["transactions"]]
    assert raw.endswith(b"".join(bytes.fromhex(t["data"]) for t in tj["transactions"]))
    # merkle root over txids (not wtxids), recomputed from the template's own txid fields
    level = [dsha(block.txs[0].serialize(with_witness=False))] + \
        [bytes.fromhex(t["txid"])[::-1] for t in tj["transactions"]]
    while len(level) > 1:
        level += level[-1:] * (len(level) % 2)
        level = [dsha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    assert block.merkle_root == level[0]
    # coinbase: BIP 34 height 213 = push 2 bytes d5 00; the reward to the address
    cb = block.txs[0]
    assert cb.is_coinbase
    assert cb.inputs[0].script_sig[:3] == bytes.fromhex("02d500")
    assert parse_bip34_height(cb.inputs[0].script_sig) == 213
    assert 2 <= len(cb.inputs[0].script_sig) <= 100
    assert cb.outputs[0].value == tj["coinbasevalue"]
    assert cb.outputs[0].script_pubkey == address_script(REGTEST_P2WPKH, "regtest")
    # witness commitment: exactly the node's script, and the reserved value in the witness
    assert cb.outputs[-1].value == 0
    assert cb.outputs[-1].script_pubkey.hex() == tj["default_witness_commitment"]
    assert cb.witnesses == ((bytes(32),),)
    wroot = [bytes(32)] + [bytes.fromhex(t["hash"])[::-1] for t in tj["transactions"]]
    while len(wroot) > 1:
        wroot += wroot[-1:] * (len(wroot) % 2)
        wroot = [dsha(wroot[i] + wroot[i + 1]) for i in range(0, len(wroot), 2)]
    assert dsha(wroot[0] + cb.witnesses[0][0]).hex() == tj["default_witness_commitment"][12:]
    # and sgm's own checker agrees
    check_block(block, height=213, prev_hash=tmpl.prev_hash, target=target,
                coinbase_value=tj["coinbasevalue"])


def test_the_coinbase_is_exactly_the_jobs_coinb1_extranonce_coinb2():
    tmpl, work, share, raw = mined_block(load("core_regtest_template.json"))
    cb = Block.parse(raw).txs[0]
    job = work.job
    assert cb.serialize(with_witness=False) == (job.coinb1 + job.extranonce1
                                                + bytes.fromhex(share.extranonce2) + job.coinb2)
    assert job.extranonce1.hex() == "a1b2c3d4" and job.extranonce2_size == 4
    assert job.version_mask == 0 and not job.rolls_version
    assert job.target == int(load("core_regtest_template.json")["target"], 16)
    # the extranonce sits inside the scriptSig as one push: height | PUSH8 | en1 en2 | PUSH tag
    ss = cb.inputs[0].script_sig
    assert ss[3] == 8 and ss[4:8] == job.extranonce1
    assert b"/sgm/" in ss


def test_every_extranonce2_gives_another_valid_block():
    tmpl = parse_template(load("core_regtest_template.json"))
    work = build_work(tmpl, address_script(REGTEST_P2TR, "regtest"), job_id="t2", clean=True,
                      extranonce2_size=4)
    roots = set()
    for mid in (0, 1, 2, 77, 4096):
        prepared = prepare_work(work.job, mid)
        res = _native.scan(prepared.midstate, prepared.tail, 0, 1 << 16, work.job.target)
        share = make_share(work.job, prepared, res.nonces[0])
        block = Block.parse(bytes.fromhex(work.block_hex(share)))
        roots.add(block.merkle_root)
        assert block.txs[0].outputs[0].script_pubkey[:2] == b"\x51\x20"   # P2TR payout
    assert len(roots) == 5


# ----------------------------------------------------------------------- btcd's layout
def test_btcd_template_bare_commitment_is_wrapped_and_the_reserved_value_is_there():
    tj = load("btcd_simnet_template.json")
    assert len(tj["default_witness_commitment"]) == 64            # bare 32 bytes
    assert all("txid" not in t for t in tj["transactions"])        # btcd: "hash" is the txid
    tmpl, work, share, raw = mined_block(tj)
    block = Block.parse(raw)
    cb = block.txs[0]
    assert cb.outputs[-1].script_pubkey == bytes.fromhex("6a24aa21a9ed" + tj["default_witness_commitment"])
    assert cb.witnesses == ((bytes(32),),)       # btcd rejects a coinbase without it
    assert find_witness_commitment(cb).hex() == tj["default_witness_commitment"]
    # coinbaseaux flags go into the scriptSig right after the height (1042 = 02 12 04)
    ss = cb.inputs[0].script_sig
    assert ss.startswith(bytes.fromhex("021204") + bytes.fromhex(tj["coinbaseaux"]["flags"]))
    txids = [bytes.fromhex(t["hash"])[::-1] for t in tj["transactions"]]
    assert block.merkle_root == merkle_root([cb.txid, *txids])
    check_block(block, height=1042, target=tmpl.target, coinbase_value=tj["coinbasevalue"])


def test_a_template_with_witnesses_but_no_commitment_gets_one_computed():
    tj = load("core_regtest_template.json")
    del tj["default_witness_commitment"]
    tmpl, work, share, raw = mined_block(tj)
    cb = Block.parse(raw).txs[0]
    assert cb.outputs[-1].script_pubkey.hex() == load("core_regtest_template.json")["default_witness_commitment"]


def test_a_template_without_witness_data_or_commitment_builds_a_legacy_block():
    tj = load("core_regtest_template.json")
    legacy = [t for t in tj["transactions"] if t["txid"] == t["hash"]]
    assert legacy
    tj["transactions"] = legacy
    del tj["default_witness_commitment"]
    tj["rules"] = []
    tmpl, work, share, raw = mined_block(tj, address="mfhE6jAUwjUDNZhaX1PAsDTKfneQF2Nshc")
    block = Block.parse(raw)
    assert not any(tx.has_witness for tx in block.txs)
    assert b"\x00\x01" != raw[81 + 4:81 + 6]       # no segwit marker on the coinbase
    assert len(block.txs[0].outputs) == 1
    check_block(block, height=213, segwit=False)


# ------------------------------------------------------------------------------ BIP 34
@pytest.mark.parametrize("height", range(1, 17))
def test_heights_1_to_16_are_the_single_opcodes_op1_to_op16(height):
    assert bip34_height_script(height) == bytes([0x50 + height])
    tj = load("core_regtest_template.json")
    tj["height"] = height
    tmpl, work, share, raw = mined_block(tj)
    block = Block.parse(raw)
    assert block.txs[0].inputs[0].script_sig[0] == 0x50 + height
    check_block(block, height=height)
    # what nodes reject as bad-cb-height: the height pushed as a one-byte number
    cb = block.txs[0]
    pushed = bytes([1, height]) + cb.inputs[0].script_sig[1:]
    bad_cb = Tx(cb.version, (replace(cb.inputs[0], script_sig=pushed),), cb.outputs, cb.locktime,
                cb.witnesses)
    bad = Block(block.header, (bad_cb, *block.txs[1:]))
    with pytest.raises(BlockError, match="bad-cb-height"):
        check_block(bad, height=height, check_pow=False)


def test_the_wrong_height_is_bad_cb_height():
    tmpl, work, share, raw = mined_block(load("core_regtest_template.json"))
    with pytest.raises(BlockError, match="bad-cb-height"):
        check_block(Block.parse(raw), height=214)


# --------------------------------------------------------------- the checker itself
def _mined():
    tmpl, work, share, raw = mined_block(load("core_regtest_template.json"))
    return tmpl, Block.parse(raw)


def test_a_coinbase_without_the_reserved_value_is_refused():
    tmpl, block = _mined()
    cb = block.txs[0]
    stripped = Tx(cb.version, cb.inputs, cb.outputs, cb.locktime, ())
    with pytest.raises(BlockError, match="bad-witness-nonce-size"):
        check_block(Block(block.header, (stripped, *block.txs[1:])), height=213, check_pow=False)


def test_a_wrong_commitment_or_reserved_value_is_refused():
    tmpl, block = _mined()
    cb = block.txs[0]
    other = Tx(cb.version, cb.inputs, cb.outputs, cb.locktime, ((b"\x01" * 32,),))
    with pytest.raises(BlockError, match="bad-witness-merkle-match"):
        check_block(Block(block.header, (other, *block.txs[1:])), height=213, check_pow=False)


def test_a_changed_transaction_breaks_the_merkle_root():
    tmpl, block = _mined()
    txs = list(block.txs)
    txs[1], txs[2] = txs[2], txs[1]
    with pytest.raises(BlockError, match="bad-txnmrklroot"):
        check_block(Block(block.header, tuple(txs)), height=213, check_pow=False)


def test_proof_of_work_is_checked():
    tmpl, block = _mined()
    # the same header with nonces until one misses the target
    for nonce in range(1000):
        header = block.header[:76] + struct.pack("<I", nonce)
        if int.from_bytes(dsha(header), "little") > tmpl.target:
            break
    with pytest.raises(BlockError, match="high-hash"):
        check_block(Block(header, block.txs), height=213)


def test_overpaying_coinbase_and_witness_without_commitment_are_refused():
    tmpl, block = _mined()
    with pytest.raises(BlockError, match="bad-cb-amount"):
        check_block(block, height=213, coinbase_value=tmpl.coinbase_value - 1)
    cb = block.txs[0]
    no_commit = Tx(cb.version, cb.inputs, cb.outputs[:-1], cb.locktime, ())
    txs = (no_commit, *block.txs[1:])
    header = block.header[:36] + merkle_root([t.txid for t in txs]) + block.header[68:]
    with pytest.raises(BlockError, match="unexpected-witness"):
        check_block(Block(header, txs), height=213, check_pow=False)


# ------------------------------------------------------------------ transactions
def test_transaction_round_trip_and_parse_errors():
    for t in load("core_regtest_template.json")["transactions"]:
        raw = bytes.fromhex(t["data"])
        tx = Tx.parse(raw)
        assert tx.serialize() == raw
        assert tx.txid[::-1].hex() == t["txid"] and tx.wtxid[::-1].hex() == t["hash"]
    raw = bytes.fromhex(load("core_regtest_template.json")["transactions"][0]["data"])
    for bad in (raw[:-1], raw + b"\x00", raw[:10], b""):
        with pytest.raises(BlockError):
            Tx.parse(bad)
    with pytest.raises(BlockError, match="non-canonical"):
        Tx.parse(raw[:4] + b"\x00\x01" + b"\xfd\x01\x00" + raw[7:])


# ------------------------------------------------------------ prevhash, real headers
def test_prevhash_goes_to_the_job_in_stratum_form_and_into_the_header_as_is(header_vectors):
    """Real mainnet headers: the job built from a template naming a block's previous hash
    and fields reproduces that block's header byte for byte."""
    tj = load("core_regtest_template.json")
    checked = 0
    for hv in header_vectors:
        if int(hv["prev_block_hash"], 16) == 0:
            continue
        t = copy.deepcopy(tj)
        t.update(previousblockhash=hv["prev_block_hash"], version=hv["version"],
                 bits=hv["nbits"], curtime=hv["time"], height=hv.get("height") or 1000)
        del t["target"]
        tmpl = parse_template(t)
        work = build_work(tmpl, b"\x51", job_id="h", clean=True)
        header = bytes.fromhex(hv["header_hex"])
        root = bytes.fromhex(hv["merkle_root"])[::-1]
        assert work.job.header(b"\0" * 4, hv["nonce"], merkle_root=root) == header
        # the Stratum text a pool would send for this prevhash gives the same job
        assert word_swap(bytes.fromhex(work.job.prevhash_hex)) == header[4:36]
        again = Job.from_notify([work.job.job_id, work.job.prevhash_hex, work.job.coinb1.hex(),
                                 work.job.coinb2.hex(), [], f"{hv['version']:08x}", hv["nbits"],
                                 f"{hv['time']:08x}", True], extranonce1=b"",
                                extranonce2_size=4, target=work.job.target)
        assert again.prevhash == work.job.prevhash == header[4:36]
        checked += 1
    assert checked >= 3


# ------------------------------------------------------------------- template errors
def test_commitment_that_does_not_match_the_transactions_is_refused():
    tj = load("core_regtest_template.json")
    tj["default_witness_commitment"] = "6a24aa21a9ed" + "00" * 32
    with pytest.raises(TemplateError, match="default_witness_commitment"):
        parse_template(tj)
    tj["default_witness_commitment"] = "6a24aa21a9ee" + "00" * 32
    with pytest.raises(TemplateError, match="default_witness_commitment"):
        parse_template(tj)


def test_transaction_ids_are_checked_against_the_data():
    tj = load("core_regtest_template.json")
    tj["transactions"][2]["txid"] = "00" * 32
    with pytest.raises(TemplateError, match=r"transactions\[2\]\.txid"):
        parse_template(tj)
    tj = load("core_regtest_template.json")
    tj["transactions"][0]["data"] = tj["transactions"][0]["data"][:-2]
    with pytest.raises(TemplateError, match=r"transactions\[0\]\.data"):
        parse_template(tj)
    tj = load("core_regtest_template.json")
    tj["transactions"].append(tj["transactions"][1])
    with pytest.raises(TemplateError, match="twice"):
        parse_template(tj)


def test_target_must_match_bits():
    tj = load("core_regtest_template.json")
    tj["target"] = "00" * 32
    with pytest.raises(TemplateError, match="'target'"):
        parse_template(tj)
