"""``getblocktemplate`` → validated :class:`BlockTemplate` → mining work (:class:`SoloWork`).

Every field sgm uses is checked; a missing or malformed one raises :class:`TemplateError`
naming it.  Transactions are parsed and their ``txid`` / ``hash`` re-computed, so a block is
never built from data the node did not mean.

The coinbase (BIP 34 height first, as nodes require: heights 1..16 are the single opcodes
OP_1..OP_16) is laid out so that the engine rolls its extranonce exactly like a pool's
extranonce2::

    coinb1 = version | 1 input (null prevout) | len(scriptSig) | height | aux | PUSH(n)
    extranonce1 (fixed per run) ‖ extranonce2 (rolled by the scheduler)     -- n bytes
    coinb2 = PUSH(tag) | sequence | outputs (payout [, witness commitment]) | locktime

and the work is handed to the scheduler as a :class:`sgm.jobs.Job`, like any pool job.
When the template carries a witness commitment (Bitcoin Core: the full output script
``6a24aa21a9ed…``; btcd: the bare 32 bytes, wrapped here) -- or any of its transactions
has a witness -- the coinbase gets that output and the 32-byte witness reserved value.
"""
from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sgm.bitcoin import (
    COMMITMENT_PREFIX,
    MAX_TARGET,
    WITNESS_RESERVED_VALUE,
    bip34_height_script,
    merkle_branch,
    nbits_to_target,
    push_data,
    sha256d,
    witness_commitment,
)
from sgm.checks import is_hex, is_int
from sgm.jobs import Job, Share, word_swap
from sgm.solo.block import COINBASE_SCRIPT_MAX, Block, BlockError, Tx, TxIn, TxOut, check_block

__all__ = ["TemplateError", "TemplateTx", "BlockTemplate", "parse_template", "SoloWork",
           "build_work", "DEFAULT_TAG", "MAX_MONEY"]

log = logging.getLogger(__name__)

MAX_MONEY = 21_000_000 * 100_000_000
DEFAULT_TAG = b"/sgm/"
#: Transactions in one template, at most (a 4 MWU block holds far fewer).
MAX_TEMPLATE_TXS = 200_000


class TemplateError(ValueError):
    """A getblocktemplate answer that cannot be mined; the message names the field."""


@dataclass(frozen=True)
class TemplateTx:
    data: bytes               # as the node serialized it (with witness when it has one)
    tx: Tx
    txid: bytes               # internal order
    wtxid: bytes


@dataclass(frozen=True)
class BlockTemplate:
    """The fields of a getblocktemplate answer that sgm mines with, validated."""

    version: int
    prev_hash: bytes          # header order (internal)
    height: int
    bits: int
    target: int
    curtime: int
    mintime: int | None
    coinbase_value: int
    transactions: tuple[TemplateTx, ...]
    witness_commitment: bytes | None   # 32 bytes: the node's, checked against ours
    longpollid: str | None
    rules: tuple[str, ...]
    coinbase_aux: bytes
    segwit: bool              # the chain has segwit: rules or a commitment say so (the
                              # solo client also sets it from the node's soft forks)

    @property
    def prev_hash_hex(self) -> str:
        """Display hex of the previous block (as RPC prints it)."""
        return self.prev_hash[::-1].hex()

    @property
    def txids(self) -> tuple[bytes, ...]:
        return tuple(t.txid for t in self.transactions)

    def same_work(self, other: BlockTemplate) -> bool:
        """True when ``other`` would give the same block contents (tip, transactions,
        reward, version, bits)."""
        return (self.prev_hash == other.prev_hash and self.txids == other.txids
                and self.coinbase_value == other.coinbase_value
                and self.version == other.version and self.bits == other.bits)


# ---------------------------------------------------------------------------- parsing
def _field(tmpl: Mapping[str, Any], name: str) -> Any:
    if name not in tmpl:
        raise TemplateError(f"getblocktemplate: field {name!r} is missing")
    return tmpl[name]


def _int(tmpl: Mapping[str, Any], name: str, lo: int, hi: int, *, optional: bool = False) -> int | None:
    if optional and tmpl.get(name) is None:
        return None
    value = _field(tmpl, name)
    if not is_int(value):
        raise TemplateError(f"getblocktemplate: field {name!r} must be an integer, "
                            f"got {type(value).__name__}")
    if not lo <= value <= hi:
        raise TemplateError(f"getblocktemplate: field {name!r} = {value} is outside {lo}..{hi}")
    return int(value)


def _hex(value: Any, name: str, digits: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise TemplateError(f"getblocktemplate: field {name!r} must be a hex string, "
                            f"got {type(value).__name__}")
    if not is_hex(value, digits):
        want = f"{digits} hex digits" if digits else "hex"
        raise TemplateError(f"getblocktemplate: field {name!r} is not {want} "
                            f"({value[:40]!r}{'…' if len(value) > 40 else ''})")
    return bytes.fromhex(value)


def _parse_tx(entry: Any, i: int) -> TemplateTx:
    where = f"transactions[{i}]"
    if not isinstance(entry, Mapping):
        raise TemplateError(f"getblocktemplate: {where} must be an object, got {type(entry).__name__}")
    data = _hex(_field_tx(entry, "data", where), f"{where}.data")
    try:
        tx = Tx.parse(data)
    except BlockError as exc:
        raise TemplateError(f"getblocktemplate: {where}.data is not a transaction: {exc}") from None
    if tx.serialize() != data:
        raise TemplateError(f"getblocktemplate: {where}.data is not in canonical serialization")
    if tx.is_coinbase:
        raise TemplateError(f"getblocktemplate: {where} is a coinbase transaction")
    txid, wtxid = tx.txid, tx.wtxid
    if entry.get("txid") is not None:
        given = _hex(entry["txid"], f"{where}.txid", 64)[::-1]
        if given != txid:
            raise TemplateError(f"getblocktemplate: {where}.txid does not match its data")
    if entry.get("hash") is not None:
        # Bitcoin Core: the wtxid; btcd: the txid (it has no "txid" field)
        given = _hex(entry["hash"], f"{where}.hash", 64)[::-1]
        if given not in (wtxid, txid):
            raise TemplateError(f"getblocktemplate: {where}.hash does not match its data")
    return TemplateTx(data, tx, txid, wtxid)


def _field_tx(entry: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in entry:
        raise TemplateError(f"getblocktemplate: {where}.{name} is missing")
    return entry[name]


def parse_template(tmpl: Any) -> BlockTemplate:
    """Validate a getblocktemplate result; raise TemplateError naming the bad field."""
    if not isinstance(tmpl, Mapping):
        raise TemplateError(f"getblocktemplate: expected an object, got {type(tmpl).__name__}")
    version_raw = _int(tmpl, "version", -(1 << 31), 0xFFFFFFFF)
    assert version_raw is not None
    version = version_raw & 0xFFFFFFFF
    prev = _hex(_field(tmpl, "previousblockhash"), "previousblockhash", 64)[::-1]
    height = _int(tmpl, "height", 1, 0x7FFFFFFF)
    assert height is not None
    bits_text = _field(tmpl, "bits")
    bits = int.from_bytes(_hex(bits_text, "bits", 8), "big")
    try:
        target = nbits_to_target(bits)
    except ValueError as exc:
        raise TemplateError(f"getblocktemplate: field 'bits': {exc}") from None
    if not 0 < target <= MAX_TARGET:
        raise TemplateError(f"getblocktemplate: field 'bits' {bits:08x} gives a zero target")
    if tmpl.get("target") is not None:
        given = int.from_bytes(_hex(tmpl["target"], "target", 64), "big")
        if given != target:
            raise TemplateError(f"getblocktemplate: field 'target' {tmpl['target']} does not "
                                f"match bits {bits:08x}")
    curtime = _int(tmpl, "curtime", 0, 0xFFFFFFFF)
    assert curtime is not None
    mintime = _int(tmpl, "mintime", 0, 0xFFFFFFFF, optional=True)
    if "coinbasevalue" not in tmpl and "coinbasetxn" in tmpl:
        raise TemplateError("getblocktemplate: the node offers only 'coinbasetxn', no "
                            "'coinbasevalue' (not supported)")
    value = _int(tmpl, "coinbasevalue", 0, MAX_MONEY)
    assert value is not None
    raw_txs = _field(tmpl, "transactions")
    if not isinstance(raw_txs, list):
        raise TemplateError(f"getblocktemplate: field 'transactions' must be a list, "
                            f"got {type(raw_txs).__name__}")
    if len(raw_txs) > MAX_TEMPLATE_TXS:
        raise TemplateError(f"getblocktemplate: {len(raw_txs)} transactions is too many")
    txs = tuple(_parse_tx(e, i) for i, e in enumerate(raw_txs))
    if len({t.txid for t in txs}) != len(txs):
        raise TemplateError("getblocktemplate: field 'transactions' lists a transaction twice")
    longpollid = tmpl.get("longpollid")
    if longpollid is not None and not isinstance(longpollid, str):
        raise TemplateError(f"getblocktemplate: field 'longpollid' must be a string, "
                            f"got {type(longpollid).__name__}")
    rules_raw = tmpl.get("rules", [])
    if not isinstance(rules_raw, list) or not all(isinstance(r, str) for r in rules_raw):
        raise TemplateError("getblocktemplate: field 'rules' must be a list of strings")
    rules = tuple(rules_raw)
    aux = b""
    aux_raw = tmpl.get("coinbaseaux")
    if aux_raw is not None:
        if not isinstance(aux_raw, Mapping):
            raise TemplateError("getblocktemplate: field 'coinbaseaux' must be an object")
        for key, val in aux_raw.items():
            aux += _hex(val, f"coinbaseaux.{key}")
    any_witness = any(t.tx.has_witness for t in txs)
    ours = witness_commitment([t.wtxid for t in txs])
    commitment: bytes | None = None
    dwc = tmpl.get("default_witness_commitment")
    if dwc is not None:
        raw = _hex(dwc, "default_witness_commitment")
        if len(raw) == 32:                       # btcd: the bare commitment
            commitment = raw
        elif len(raw) == 38 and raw[:6] == COMMITMENT_PREFIX:   # Bitcoin Core: the script
            commitment = raw[6:]
        else:
            raise TemplateError("getblocktemplate: field 'default_witness_commitment' is "
                                "neither a 32-byte commitment nor a 6a24aa21a9ed… script")
        if commitment != ours:
            raise TemplateError("getblocktemplate: field 'default_witness_commitment' does "
                                "not match the template's transactions")
    elif any_witness:
        commitment = ours   # the node left it to us (BIP 145 allows that)
    segwit = commitment is not None or any(r.lstrip("!") == "segwit" for r in rules)
    return BlockTemplate(version=version, prev_hash=prev, height=height, bits=bits,
                         target=target, curtime=curtime, mintime=mintime,
                         coinbase_value=value, transactions=txs,
                         witness_commitment=commitment, longpollid=longpollid, rules=rules,
                         coinbase_aux=aux, segwit=segwit)


# ------------------------------------------------------------------------------- work
@dataclass(frozen=True)
class SoloWork:
    """One template turned into a Job; builds the block for a share of that job."""

    template: BlockTemplate
    job: Job
    payout_script: bytes

    @property
    def commitment_script(self) -> bytes | None:
        c = self.template.witness_commitment
        return None if c is None else COMMITMENT_PREFIX + c

    def coinbase(self, extranonce2: bytes) -> Tx:
        """The coinbase for ``extranonce2`` (with the witness reserved value when the
        block commits to witnesses)."""
        tx = Tx.parse(self.job.coinbase(extranonce2))
        if self.template.witness_commitment is not None:
            tx = Tx(tx.version, tx.inputs, tx.outputs, tx.locktime, ((WITNESS_RESERVED_VALUE,),))
        return tx

    def block(self, share: Share) -> Block:
        """The full block of a share of this work (header with its nonce, extranonce2 and
        ntime; the coinbase; every template transaction)."""
        if share.job_id != self.job.job_id:
            raise ValueError(f"share of job {share.job_id}, not {self.job.job_id}")
        if share.version_bits is not None:
            raise ValueError("solo work does not roll version bits")
        en2 = bytes.fromhex(share.extranonce2)
        ntime = int(share.ntime, 16)
        if ntime != self.job.ntime:
            raise ValueError(f"share ntime {share.ntime} differs from the job's {self.job.ntime_hex}")
        header = self.job.header(en2, int(share.nonce, 16))
        if sha256d(header) != share.hash:
            raise ValueError("share hash does not match the rebuilt header")
        return Block(header, (self.coinbase(en2), *(t.tx for t in self.template.transactions)))

    def block_hex(self, share: Share, *, check_pow: bool = True) -> str:
        """The serialized block (witness serialization when it has witnesses), checked
        against the rules a node applies before it goes anywhere."""
        block = self.block(share)
        check_block(block, height=self.template.height, prev_hash=self.template.prev_hash,
                    target=self.template.target, coinbase_value=self.template.coinbase_value,
                    segwit=self.template.segwit, check_pow=check_pow)
        return block.serialize(with_witness=True).hex()


def build_work(template: BlockTemplate, payout_script: bytes, *, job_id: str,
               clean: bool, extranonce1: bytes = b"", extranonce2_size: int = 4,
               tag: bytes = DEFAULT_TAG, target: int | None = None) -> SoloWork:
    """Lay out the coinbase around the extranonce and wrap everything in a Job.

    ``target``: the share target handed to the devices (default and at most: the
    network target -- every share is a block candidate)."""
    if not payout_script:
        raise ValueError("payout script is empty")
    en_len = len(extranonce1) + extranonce2_size
    if not 1 <= en_len <= 32:
        raise ValueError(f"extranonce of {en_len} bytes: must be 1..32")
    height_push = bip34_height_script(template.height)
    head = height_push + template.coinbase_aux
    room = COINBASE_SCRIPT_MAX - len(head) - 1 - en_len - 1
    if room < 0:
        raise TemplateError("getblocktemplate: coinbaseaux leaves no room for the extranonce")
    tag = tag[:min(room, 75)]
    script_len = len(head) + 1 + en_len + (1 + len(tag) if tag else 0)
    if script_len < 2:   # cannot happen (height + extranonce), kept as the consensus rule
        raise TemplateError("coinbase scriptSig would be shorter than 2 bytes")
    outputs = [TxOut(template.coinbase_value, payout_script)]
    if template.witness_commitment is not None:
        outputs.append(TxOut(0, COMMITMENT_PREFIX + template.witness_commitment))
    cb_in = TxIn(bytes(32), 0xFFFFFFFF, b"", 0xFFFFFFFF)   # scriptSig spliced in below
    version = struct.pack("<I", 1)
    coinb1 = (version + b"\x01" + cb_in.prev_txid + struct.pack("<I", cb_in.prev_index)
              + bytes([script_len]) + head + bytes([en_len]))
    coinb2 = ((push_data(tag) if tag else b"") + struct.pack("<I", cb_in.sequence)
              + bytes([len(outputs)]) + b"".join(o.serialize() for o in outputs)
              + struct.pack("<I", 0))
    share_target = template.target if target is None else min(target, template.target)
    prev_hex = word_swap(template.prev_hash).hex()    # the Stratum text of the previous hash
    job = Job(job_id=job_id, prevhash_hex=prev_hex, prevhash=template.prev_hash,
              coinb1=coinb1, coinb2=coinb2,
              merkle_branch=tuple(merkle_branch(template.txids)), version=template.version,
              nbits=template.bits, ntime=template.curtime, clean_jobs=clean,
              extranonce1=extranonce1, extranonce2_size=extranonce2_size, target=share_target,
              version_mask=0)
    return SoloWork(template, job, payout_script)
