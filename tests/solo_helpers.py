"""Helpers for the solo tests: a small fake node (JSON-RPC over HTTP on 127.0.0.1) that can
serve recorded templates, long polls, misbehave on demand and record submitted blocks."""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "solo"


def load_template(name: str = "core_regtest_template.json") -> dict:
    return json.loads((DATA / name).read_text())


def btcd_node() -> FakeNode:
    """A node that answers as btcd on regtest with an empty mempool and segwit active
    (tests/data/solo/btcd_regtest_empty.json: no rules, no witness commitment in the
    template; segwit under bip9_softforks in getblockchaininfo)."""
    rec = load_template("btcd_regtest_empty.json")
    node = FakeNode(rec["getblocktemplate"])
    node.chaininfo = rec["getblockchaininfo"]
    return node


def dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def sgm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sgm", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


class FakeNode:
    """A node double: ``template`` (a dict in a real node's layout) is served by
    getblocktemplate; ``mode`` makes it misbehave:

    None (normal), "garbage" (200, not JSON), "html500" (500 with an HTML page),
    "empty" (200 with an empty body), "close" (closes without answering), "notrpc"
    (JSON that is not a JSON-RPC reply), "slow" (answers after ``slow_s``).

    ``errors[method] = (code, message)`` makes a method answer a JSON-RPC error.
    ``submit_answer`` is what submitblock returns (None = accepted); an accepted block
    moves the tip when ``advance_on_block``.  ``chaininfo``: the whole getblockchaininfo
    answer (default: just the chain name); ``answers[method]``: the result of any other
    method.  ``drop_submits``: that many submitblock calls are recorded, then their
    connection is closed without an answer (a reply lost on the way back).
    """

    def __init__(self, template: dict | None = None, *, chain: str = "regtest",
                 user: str = "user", password: str = "pass") -> None:
        self.template = template if template is not None else load_template()
        self.chain = chain
        self.user, self.password = user, password
        self.mode: str | None = None
        self.slow_s = 5.0
        self.errors: dict[str, tuple[int, str]] = {}
        self.submit_answer: Any = None
        self.refuse_rules = False       # an old node: getblocktemplate({"rules": …}) is an error
        self.advance_on_block = True
        self.chaininfo: dict | None = None
        self.answers: dict[str, Any] = {}
        self.drop_submits = 0
        self.submitted: list[str] = []
        self.calls: list[tuple[str, list]] = []
        self.longpolls = 0
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._cut = False

    # ------------------------------------------------------------------ control
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def start(self) -> FakeNode:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeNode:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def update(self, fn: Callable[[dict], None]) -> None:
        """Change the template (and wake long polls)."""
        with self._cond:
            fn(self.template)
            self._bump()
            self._cond.notify_all()

    def new_tip(self, prev_display_hex: str | None = None) -> str:
        """A new block on top: new previous hash, height + 1."""
        new = prev_display_hex or dsha(os.urandom(8))[::-1].hex()

        def fn(t: dict) -> None:
            t["previousblockhash"] = new
            t["height"] += 1
        self.update(fn)
        return new

    def cut_longpolls(self) -> None:
        """Close the connections of the long polls waiting now, without an answer."""
        with self._cond:
            self._cut = True
            self._cond.notify_all()

    def _bump(self) -> None:
        t = self.template
        if "longpollid" in t:
            t["longpollid"] = f"{t.get('previousblockhash', '')}{int(time.monotonic() * 1e6)}"

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    # ------------------------------------------------------------------ RPC
    def _rpc(self, method: str, params: list) -> Any:
        if method in self.errors:
            code, msg = self.errors[method]
            raise _RpcErr(code, msg)
        if method == "getblockchaininfo":
            return copy.deepcopy(self.chaininfo) if self.chaininfo is not None \
                else {"chain": self.chain}
        if method in self.answers:
            return copy.deepcopy(self.answers[method])
        if method == "getbestblockhash":
            return self.template["previousblockhash"]
        if method == "getblocktemplate":
            req = params[0] if params and isinstance(params[0], dict) else {}
            if self.refuse_rules and "rules" in req:
                raise _RpcErr(-8, "Invalid parameter: unknown key rules")
            lpid = req.get("longpollid")
            with self._cond:
                if lpid is not None and lpid == self.template.get("longpollid"):
                    self.longpolls += 1
                    self._cut = False
                    self._cond.wait(60)
                    if self._cut:
                        raise _Cut()
                return copy.deepcopy(self.template)
        if method == "submitblock":
            block_hex = params[0]
            self.submitted.append(block_hex)
            if self.drop_submits > 0:
                self.drop_submits -= 1
                raise _Cut()
            answer = self.submit_answer
            if answer is None and self.advance_on_block:
                header = bytes.fromhex(block_hex[:160])
                self.new_tip(dsha(header)[::-1].hex())
            return answer
        raise _RpcErr(-32601, "Method not found")

    def _handler_class(self) -> type:
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                token = base64.b64encode(f"{node.user}:{node.password}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {token}":
                    self._send(401, b"", "text/html")
                    return
                try:
                    req = json.loads(body)
                    method, params, rid = req["method"], req.get("params", []), req.get("id")
                except (ValueError, KeyError, TypeError):
                    self._send(500, b'{"result":null,"error":{"code":-32700,"message":"Parse error"},"id":null}')
                    return
                node.calls.append((method, params))
                mode = node.mode
                if mode == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "garbage":
                    self._send(200, b"this is not json {", "text/plain")
                    return
                if mode == "html500":
                    self._send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
                    return
                if mode == "empty":
                    self._send(200, b"")
                    return
                if mode == "notrpc":
                    self._send(200, b'{"hello": "world"}')
                    return
                if mode == "slow":
                    time.sleep(node.slow_s)
                try:
                    result = node._rpc(method, params)
                    reply, status = {"result": result, "error": None, "id": rid}, 200
                except _Cut:
                    self.close_connection = True
                    self.connection.close()
                    return
                except _RpcErr as exc:
                    status = 404 if exc.code == -32601 else 500
                    reply = {"result": None, "error": {"code": exc.code, "message": exc.message},
                             "id": rid}
                if mode == "chunked":
                    self._send_chunked(status, json.dumps(reply).encode())
                else:
                    self._send(status, json.dumps(reply).encode())

            def _send(self, status: int, data: bytes, ctype: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (ConnectionError, OSError):
                    pass

            def _send_chunked(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(data), 7):
                    part = data[i:i + 7]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

        return Handler


class _Cut(Exception):
    pass


class _RpcErr(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message
