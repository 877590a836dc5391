"""The solo work source: a node's ``getblocktemplate`` → Jobs for the scheduler, and found
blocks → ``submitblock``.

``SoloClient`` plays the part the Stratum client plays for a pool: ``on_job(job)`` gets
every new piece of work (a new tip is a clean job, a changed transaction set a non-clean
one), and ``await submit(share)`` returns a :class:`~sgm.stratum.client.Verdict` -- the
node's answer to the block built from that share, judged by :func:`judge_submitblock`:
``None`` = accepted; ``inconclusive`` = a valid block that is not on the best chain
(another block at that height came first): stale, not rejected; ``duplicate`` = the node
already had it (a retried submission that got through); any other string, e.g.
``high-hash`` or ``bad-cb-height``, is a rejection, shown as it is.

New work arrives by long polling (``longpollid``) where the node offers it, otherwise by
polling the tip every ``poll_interval`` seconds (and the whole template every
``refresh_interval`` seconds for new transactions).  When the node goes away the client
says so once (a ``lost`` event: the Miner pauses the devices), retries with exponential
backoff and says when it is back.

Everything runs on the event loop thread; ``submit`` may be called with
``asyncio.run_coroutine_threadsafe`` from a device thread, as for a pool.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sgm.jobs import Share
from sgm.solo.address import AddressError, decode_address, network_for_chain
from sgm.solo.block import BlockError
from sgm.solo.deployments import deployment_active
from sgm.solo.rpc import (
    NodeEndpoint,
    RpcAuthError,
    RpcClient,
    RpcConnectionError,
    RpcError,
    RpcFailure,
    parse_node_url,
    read_cookie,
)
from sgm.solo.template import DEFAULT_TAG, BlockTemplate, SoloWork, TemplateError, build_work, parse_template
from sgm.stratum.client import Verdict

__all__ = ["SoloConfig", "SoloClient", "SoloError", "SoloConfigError", "SoloEvent", "GBT_RULES",
           "BlockAnswer", "judge_submitblock"]

log = logging.getLogger(__name__)

Callback = Callable[..., Any] | Callable[..., Awaitable[Any]]

#: What sgm asks getblocktemplate for (Bitcoin Core refuses a call without the segwit rule).
GBT_RULES = {"rules": ["segwit"]}
#: RPC error codes of a node that is not ready to give templates (not connected, syncing).
NOT_READY_CODES = {-9: "the node has no peers", -10: "the node is still syncing",
                   -28: "the node is still starting"}
#: Jobs whose shares are still wanted (non-clean updates keep older ones valid).
MAX_WORKS = 32
#: Times submitblock is retried when the connection fails (a found block is worth it).
SUBMIT_RETRIES = 3
#: Each start-up call waits at most this long (the Miner gives the whole start 30 s).
START_CALL_TIMEOUT = 12.0


class SoloError(RuntimeError):
    """Solo mining cannot start: the message says why (node, credentials, address…)."""


class SoloConfigError(SoloError):
    """The configuration does not fit the node (an address of another network, a segwit
    address on a chain without segwit): a usage error, found at start (the CLI exits 2)."""


@dataclass(frozen=True)
class BlockAnswer:
    """The node's answer to ``submitblock``, judged.

    outcome: ``accepted`` (null, or ``duplicate``: the node already holds this very block
    as valid -- it can only be ours, sent by an earlier try whose answer was lost),
    ``stale`` (valid but not on the best chain: another block at that height came first),
    ``rejected`` (invalid: the reason says why), ``unanswered`` (no usable answer: the
    node may or may not have it)."""

    outcome: str
    reason: str | None = None


#: submitblock answers (BIP 22 and Bitcoin Core / Bitcoin SV) of a block the node keeps
#: but that is not on its best chain: an orphaned (stale) block, not an invalid one
STALE_ANSWERS = frozenset({"inconclusive", "duplicate-inconclusive"})


def judge_submitblock(result: Any) -> BlockAnswer:
    """What a ``submitblock`` result means for a block sgm found (see :class:`BlockAnswer`).

    Bitcoin Core / SV answer null, ``duplicate``, ``duplicate-invalid``,
    ``duplicate-inconclusive``, ``inconclusive`` or a BIP 22 reject reason; btcd answers
    null or ``rejected: <why>`` (``already have block …`` for a duplicate)."""
    if result is None:
        return BlockAnswer("accepted")
    if not isinstance(result, str):
        return BlockAnswer("unanswered", f"unexpected submitblock answer {result!r:.80}")
    text = result.strip()
    low = text.lower()
    if low in STALE_ANSWERS:
        return BlockAnswer("stale", text)
    if low == "duplicate":
        return BlockAnswer("accepted", text)
    detail = low[len("rejected:"):].strip() if low.startswith("rejected:") else ""
    if detail.startswith("already have block"):          # btcd's duplicate
        if "orphan" in detail:                            # kept, its parent unknown
            return BlockAnswer("stale", text)
        return BlockAnswer("accepted", text)
    return BlockAnswer("rejected", text or "rejected (empty reason)")


@dataclass(frozen=True)
class SoloEvent:
    """What happened, for the user (``message``) and the Miner (``pause``: stop hashing
    the current work -- the node is gone or a block for it was just found).

    kind: connected, lost, back, job, block_found, block_result, warning.
    """

    kind: str
    message: str
    level: str = "INFO"
    pause: bool = False
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class SoloConfig:
    """Where the node is, how to log in, and where the reward goes."""

    url: str
    address: str
    user: str | None = None
    password: str | None = None
    cookie_file: str | None = None
    tag: bytes = DEFAULT_TAG
    poll_interval: float = 5.0           # tip polling without long polling
    refresh_interval: float = 30.0       # full template refresh (new transactions)
    longpoll: bool = True                # use longpollid when the node offers it
    longpoll_timeout: float = 1200.0     # then a plain refresh and a new long poll
    rpc_timeout: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    extranonce2_size: int = 4

    def endpoint(self) -> NodeEndpoint:
        return parse_node_url(self.url, self.user, self.password, self.cookie_file)

    def validate(self) -> None:
        """Raise ValueError (AddressError) for a bad URL, credentials or address."""
        ep = self.endpoint()
        if ep.cookie_file is None and not (ep.user or ep.password):
            raise ValueError("--solo needs the node's RPC credentials: "
                             "http://USER:PASS@HOST:PORT, -u/-p, or --rpc-cookie PATH")
        if ep.cookie_file is not None:
            try:
                read_cookie(ep.cookie_file)
            except RpcAuthError as exc:
                raise ValueError(str(exc)) from None
        decode_address(self.address)
        for name in ("poll_interval", "refresh_interval", "longpoll_timeout", "rpc_timeout",
                     "backoff_initial", "backoff_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"solo {name} must be > 0")
        if not 1 <= self.extranonce2_size <= 8:
            raise ValueError("solo extranonce2_size must be 1..8")


class SoloClient:
    """Mine solo against one node.  ``await start()`` (checks the node, the chain and the
    address, gets the first template -- raises :class:`SoloError`), then ``await run()``
    until ``await close()``."""

    def __init__(self, config: SoloConfig, *, on_job: Callback, on_event: Callback | None = None,
                 ssl_context: ssl.SSLContext | None = None, extranonce1: bytes | None = None) -> None:
        config.validate()
        self.config = config
        self.endpoint = config.endpoint()
        self.rpc = RpcClient(self.endpoint, timeout=config.rpc_timeout, ssl_context=ssl_context)
        self.on_job = on_job
        self.on_event = on_event
        self.address = decode_address(config.address)
        #: fixed per run: two sgm instances paying to one address never hash the same work
        self.extranonce1 = os.urandom(4) if extranonce1 is None else extranonce1
        self.chain: str | None = None
        self.payout_script: bytes | None = None
        self.current: SoloWork | None = None
        self.blocks_found = 0
        self.blocks_accepted = 0
        self.blocks_rejected = 0
        self.blocks_stale = 0          # valid, but another block at that height came first
        self.blocks_unanswered = 0     # no usable answer from submitblock
        #: the node's own word on segwit (getblockchaininfo): True/False, None = it gave none
        self.node_segwit: bool | None = None
        self.templates = 0
        self.jobs_sent = 0
        self._works: OrderedDict[str, SoloWork] = OrderedDict()
        self._solved: set[bytes] = set()       # prev hashes with a block in flight or accepted
        self._bad_jobs: set[str] = set()       # jobs whose block the node refused
        self._gbt_params: dict[str, Any] = dict(GBT_RULES)
        self._longpollid: str | None = None
        self._longpoll_ok = config.longpoll
        self._fetch_seq = 0
        self._offered_seq = 0
        self._last_refresh = 0.0
        self._refresh_now: asyncio.Event | None = None
        self._closing = False
        self._outage = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._job_counter = 0

    # ------------------------------------------------------------------ start-up
    async def start(self) -> None:
        """Check the node and the address; hand the first job to ``on_job``."""
        ep = self.endpoint
        try:
            info = await self.rpc.call("getblockchaininfo", timeout=START_CALL_TIMEOUT)
            if not isinstance(info, dict) or not isinstance(info.get("chain"), str):
                raise SoloError(f"node at {ep}: getblockchaininfo gave no 'chain'")
            self.chain = info["chain"]
            try:
                network_for_chain(self.chain)
            except AddressError as exc:
                raise SoloError(f"node at {ep}: {exc}") from None
            try:
                self.address.check_network(self.chain)
            except AddressError as exc:   # like a malformed address: the user's to fix
                raise SoloConfigError(f"--coinbase-addr: {exc}") from None
            self.payout_script = self.address.script
            self.node_segwit = deployment_active(info, "segwit")
            seq, tmpl = await self._fetch_template(startup=True)
            if self.address.is_segwit and not tmpl.segwit and self.node_segwit is None:
                # Bitcoin Core >= 23 moved the soft forks to getdeploymentinfo
                self.node_segwit = await self._deployment_info("segwit")
                tmpl = self._with_node_segwit(tmpl)
        except RpcError as exc:
            hint = NOT_READY_CODES.get(exc.code or 0)
            raise SoloError(f"node at {ep}: {exc}" + (f" ({hint})" if hint else "")) from None
        except RpcFailure as exc:
            raise SoloError(str(exc)) from None
        except TemplateError as exc:
            raise SoloError(f"node at {ep}: {exc}") from None
        if self.address.is_segwit and not tmpl.segwit:
            said = {False: "reports segwit as not active",
                    None: "says nothing about segwit"}[self.node_segwit]
            raise SoloConfigError(
                f"--coinbase-addr: {self.address.text} is a segwit address, but the node "
                f"{said} (chain {self.chain}) and its templates show none: use a base58 "
                "(P2PKH/P2SH) address")
        await self._offer(seq, tmpl)
        self._last_refresh = time.monotonic()
        await self._emit(SoloEvent(
            "connected", f"node {ep} (chain {self.chain}), height {tmpl.height}, paying "
            f"{tmpl.coinbase_value / 1e8:.8f} to {self.address.text}; new work by "
            f"{'long polling' if self._use_longpoll(tmpl) else 'polling the tip'}",
            data={"chain": self.chain, "height": tmpl.height}))

    def _use_longpoll(self, tmpl: BlockTemplate | None = None) -> bool:
        lpid = tmpl.longpollid if tmpl is not None else self._longpollid
        return self._longpoll_ok and bool(lpid)

    # ------------------------------------------------------------------ templates
    async def _fetch_template(self, *, startup: bool = False, longpollid: str | None = None
                              ) -> tuple[int, BlockTemplate]:
        """(sequence number, validated template).  Raises RpcFailure / TemplateError."""
        self._fetch_seq += 1
        seq = self._fetch_seq
        params = dict(self._gbt_params)
        timeout = START_CALL_TIMEOUT if startup else None
        if longpollid is not None:
            params["longpollid"] = longpollid
            timeout = self.config.longpoll_timeout
        try:
            raw = await self.rpc.call("getblocktemplate", params, timeout=timeout)
        except RpcError as exc:
            # a node that does not know the rules parameter: ask it plainly, once
            if startup and "rules" in self._gbt_params and exc.code in (-8, -3, -32602) \
                    and "segwit" not in exc.message.lower():
                log.info("solo: node refused %s (%s); asking without rules", GBT_RULES, exc)
                self._gbt_params = {}
                return await self._fetch_template()
            raise
        tmpl = await asyncio.to_thread(parse_template, raw)   # parses every transaction
        self.templates += 1
        return seq, self._with_node_segwit(tmpl)

    def _with_node_segwit(self, tmpl: BlockTemplate) -> BlockTemplate:
        """A template of a node that says segwit is active is a segwit template, even
        when nothing in it shows that (btcd with no witness transaction: no rules, no
        commitment).  Its blocks are checked under BIP 141, which needs no witness
        commitment while no transaction has a witness."""
        if self.node_segwit and not tmpl.segwit:
            return replace(tmpl, segwit=True)
        return tmpl

    async def _deployment_info(self, name: str) -> bool | None:
        """``getdeploymentinfo`` (Bitcoin Core >= 23) on soft fork ``name``; None when
        the node does not have that call or says nothing about it."""
        try:
            info = await self.rpc.call("getdeploymentinfo", timeout=START_CALL_TIMEOUT)
        except RpcError as exc:
            log.debug("solo: getdeploymentinfo: %s", exc)
            return None
        return deployment_active(info, name)

    async def _offer(self, seq: int, tmpl: BlockTemplate, *, redo_prev: bytes | None = None) -> None:
        """Turn a template into a job when it is new work; older answers are ignored.

        ``redo_prev``: the previous-block hash of work whose block was just submitted (the
        devices were paused): a template still on it is handed out again as a clean job."""
        if seq < self._offered_seq:
            return          # a newer answer was already used
        self._offered_seq = seq
        self._longpollid = tmpl.longpollid
        cur = self.current
        clean = cur is None or tmpl.prev_hash != cur.template.prev_hash \
            or tmpl.prev_hash == redo_prev
        if not clean and cur is not None and tmpl.same_work(cur.template):
            return
        assert self.payout_script is not None
        self._job_counter += 1
        job_id = f"{tmpl.height:x}.{self._job_counter:x}"
        work = build_work(tmpl, self.payout_script, job_id=job_id, clean=clean,
                          extranonce1=self.extranonce1,
                          extranonce2_size=self.config.extranonce2_size, tag=self.config.tag)
        if clean:
            self._works.clear()
            self._bad_jobs.clear()
        self._works[job_id] = work
        while len(self._works) > MAX_WORKS:
            self._works.popitem(last=False)
        self.current = work
        self.jobs_sent += 1
        log.info("solo: job %s height %d prev %s, %d transactions, %s", job_id, tmpl.height,
                 tmpl.prev_hash_hex[:16], len(tmpl.transactions),
                 "new tip" if clean else "transactions changed")
        await self._call(self.on_job, work.job)
        await self._emit(SoloEvent(
            "job", f"height {tmpl.height}: {len(tmpl.transactions)} transactions, "
            f"reward {tmpl.coinbase_value / 1e8:.8f}"
            f"{'' if clean else ' (transactions changed)'}",
            level="DEBUG", data={"job_id": job_id, "clean": clean, "height": tmpl.height}))

    # ------------------------------------------------------------------ main loop
    async def run(self) -> None:
        """Follow the node until close(): long polling or tip polling, with backoff."""
        self._refresh_now = asyncio.Event()
        delay = self.config.backoff_initial
        while not self._closing:
            try:
                if self.current is None or self._outage:
                    await self._refetch()          # after an outage: work at once
                elif self._use_longpoll():
                    await self._longpoll_once()
                else:
                    await self._poll_once()
                if self._outage:
                    self._outage = False
                    await self._emit(SoloEvent("back", f"node {self.endpoint} answers again"))
                delay = self.config.backoff_initial
            except asyncio.CancelledError:
                raise
            except (RpcFailure, TemplateError) as exc:
                if self._closing:
                    break
                await self._lost(exc)
                await self._sleep(delay)
                delay = min(delay * 2, self.config.backoff_max)
            except Exception:  # noqa: BLE001 - a bug must not end solo mining silently
                log.exception("solo: unexpected error; retrying")
                await self._sleep(delay)
                delay = min(delay * 2, self.config.backoff_max)

    async def _longpoll_once(self) -> None:
        lpid = self._longpollid
        assert lpid is not None
        started = time.monotonic()
        try:
            seq, tmpl = await self._fetch_template(longpollid=lpid)
        except RpcError as exc:
            if exc.code in NOT_READY_CODES:
                raise
            # the node offered a longpollid but refuses the long poll: poll the tip instead
            self._longpoll_ok = False
            await self._emit(SoloEvent("warning", f"long polling refused ({exc}); polling "
                                       f"the tip every {self.config.poll_interval:g} s instead",
                                       level="WARNING"))
            return
        except RpcConnectionError as exc:
            # a long poll may be cut by the node or a proxy: a plain request tells whether
            # the node is really gone (that one raises into run())
            log.info("solo: long poll ended without an answer (%s); refreshing", exc)
            seq, tmpl = await self._fetch_template()
            await self._offer(seq, tmpl)
            await self._sleep(min(1.0, self.config.poll_interval))
            return
        jobs_before = self.jobs_sent
        await self._offer(seq, tmpl)
        self._last_refresh = time.monotonic()
        if self.jobs_sent == jobs_before and time.monotonic() - started < 1.0:
            await self._sleep(1.0)   # a node that answers long polls at once: no busy loop

    async def _refetch(self) -> None:
        seq, tmpl = await self._fetch_template()
        self._last_refresh = time.monotonic()
        await self._offer(seq, tmpl)

    async def _poll_once(self) -> None:
        await self._sleep(self.config.poll_interval)
        if self._closing:
            return
        cur = self.current
        due = time.monotonic() - self._last_refresh >= self.config.refresh_interval
        if cur is not None and not due and not self._outage:
            best = await self.rpc.call("getbestblockhash")
            if isinstance(best, str) and best.lower() == cur.template.prev_hash_hex:
                return
        seq, tmpl = await self._fetch_template()
        self._last_refresh = time.monotonic()
        await self._offer(seq, tmpl)

    async def _lost(self, exc: BaseException) -> None:
        if self._outage:
            log.debug("solo: node still unavailable: %s", exc)
            return
        self._outage = True
        self.current = None     # the next template is a clean job, whatever it holds
        await self._emit(SoloEvent(
            "lost", f"no work from the node ({exc}); devices wait, retrying with backoff "
            f"up to {self.config.backoff_max:g} s", level="WARNING", pause=True))

    async def _sleep(self, seconds: float) -> None:
        ev = self._refresh_now
        if ev is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ev.wait(), seconds)
        ev.clear()

    # ------------------------------------------------------------------ blocks
    async def submit(self, share: Share) -> Verdict:
        """Build the block of a share and send it with submitblock; the node's verdict."""
        work = self._works.get(share.job_id)
        if work is None:
            return Verdict(False, "stale: job unknown (replaced by a new tip)", sent=False)
        prev = work.template.prev_hash
        cur = self.current
        if prev in self._solved:
            return Verdict(False, "stale: a block at this height was already found", sent=False)
        if cur is None or cur.template.prev_hash != prev:
            return Verdict(False, "stale: the tip moved", sent=False)
        if share.job_id in self._bad_jobs:
            return Verdict(False, "not submitted: the node refused a block of this job", sent=False)
        self._solved.add(prev)     # first come: no second block at this height meanwhile
        try:
            block_hex = await asyncio.to_thread(work.block_hex, share)
        except (BlockError, ValueError) as exc:
            self._solved.discard(prev)
            self._bad_jobs.add(share.job_id)
            log.error("solo: block of job %s fails the self-check: %s", share.job_id, exc)
            await self._emit(SoloEvent("warning", f"block not submitted: it fails the "
                                       f"self-check ({exc})", level="ERROR"))
            return Verdict(False, f"invalid block (self-check): {exc}")
        self.blocks_found += 1
        height = work.template.height
        block_hash = share.hash_hex
        # the node's verdict that follows is the one line a block prints (a regtest node
        # takes hundreds a second: one line each, not three)
        await self._emit(SoloEvent("block_found", f"BLOCK FOUND at height {height}: "
                                   f"{block_hash}; submitting", level="DEBUG", pause=True,
                                   data={"hash": block_hash, "height": height}))
        answer = await self._submitblock(block_hex)
        where = f"block {block_hash} at height {height}"
        redo: bytes | None = prev       # fresh clean work on this tip if it is still the tip
        if answer.outcome == "accepted":
            self.blocks_accepted += 1
            verdict = Verdict(True, answer.reason)
            if answer.reason is None:
                text, level = f"{where} accepted by the node", "INFO"
            else:
                text = f"{where} accepted: the node already had it ({answer.reason})"
                level = "WARNING"
        elif answer.outcome == "stale":
            # valid, but the node keeps another block at this height on its best chain:
            # the height is taken (prev stays solved) and no redo on the old tip
            self.blocks_stale += 1
            redo = None
            verdict = Verdict(False, f"stale block: {answer.reason}")
            text = (f"{where} is STALE (orphaned): the node answered {answer.reason!r} -- "
                    "valid, but another block at this height came first")
            level = "WARNING"
        else:
            self._solved.discard(prev)
            self._bad_jobs.add(share.job_id)
            if answer.outcome == "rejected":
                self.blocks_rejected += 1
                verdict = Verdict(False, answer.reason)
                text = f"{where} REJECTED by the node: {answer.reason}"
            else:
                self.blocks_unanswered += 1
                verdict = Verdict(None, answer.reason)
                text = f"{where} unanswered: {answer.reason}"
            level = "ERROR"
        await self._emit(SoloEvent("block_result", text, level=level,
                                   data={"hash": block_hash, "height": height,
                                         "outcome": answer.outcome,
                                         "accepted": verdict.accepted, "reason": answer.reason}))
        self._spawn(self._refresh_after_block(redo))
        return verdict

    async def _submitblock(self, block_hex: str) -> BlockAnswer:
        delay = 1.0
        for attempt in range(SUBMIT_RETRIES + 1):
            try:
                result = await self.rpc.call("submitblock", block_hex)
            except RpcError as exc:
                return BlockAnswer("rejected", exc.message)
            except RpcConnectionError as exc:
                if attempt == SUBMIT_RETRIES or self._closing:
                    return BlockAnswer("unanswered", f"no answer: {exc}")
                log.warning("solo: submitblock failed (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            except RpcFailure as exc:
                return BlockAnswer("unanswered", f"no answer: {exc}")
            return judge_submitblock(result)
        return BlockAnswer("unanswered", "no answer")

    async def _refresh_after_block(self, prev: bytes | None) -> None:
        """Fresh work at once after a submission (the devices were paused)."""
        try:
            seq, tmpl = await self._fetch_template()
        except (RpcFailure, TemplateError) as exc:
            log.warning("solo: no template after the block: %s", exc)
            if self._refresh_now is not None:
                self._refresh_now.set()
            return
        await self._offer(seq, tmpl, redo_prev=prev)

    # ------------------------------------------------------------------ plumbing
    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        if self._refresh_now is not None:
            self._refresh_now.set()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _emit(self, event: SoloEvent) -> None:
        # INFO here: the Miner shows the event to the user at its own level
        log.log(logging.DEBUG if event.level == "DEBUG" else logging.INFO, "solo: %s",
                event.message)
        await self._call(self.on_event, event)

    async def _call(self, callback: Callback | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001 - a faulty callback must not end solo mining
            log.exception("solo: callback %r failed", callback)

    @property
    def summary(self) -> dict[str, Any]:
        return {"blocks_found": self.blocks_found, "blocks_accepted": self.blocks_accepted,
                "blocks_rejected": self.blocks_rejected, "blocks_stale": self.blocks_stale,
                "blocks_unanswered": self.blocks_unanswered, "templates": self.templates,
                "chain": self.chain}

    def __repr__(self) -> str:
        return f"SoloClient({self.endpoint}, {self.address.text})"

