"""A small asyncio JSON-RPC client for a Bitcoin node (HTTP/1.1, basic auth, cookie file).

One HTTP connection per call (``Connection: close``): calls may run concurrently -- a long
poll waits on its own connection while blocks are submitted on others -- and a node
restart never leaves a half-dead pooled connection behind.

Errors are typed so that callers can tell them apart and print one clear line:

* :class:`RpcConnectionError` -- refused, unreachable, timed out, closed mid-answer;
* :class:`RpcAuthError` -- HTTP 401/403 (wrong user/password or stale cookie);
* :class:`RpcProtocolError` -- an answer that is not JSON-RPC (HTML, garbage, no body);
* :class:`RpcError` -- the node's own error object (``code``, ``message``).
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["NodeEndpoint", "parse_node_url", "RpcClient", "RpcError", "RpcConnectionError",
           "RpcAuthError", "RpcProtocolError", "RpcFailure", "read_cookie",
           "MAX_RESPONSE_BYTES"]

log = logging.getLogger(__name__)

#: Largest answer accepted (a mainnet template of a full 4 MWU block is ~ 10 MB as JSON).
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
_MAX_HEADER_BYTES = 64 * 1024


class RpcFailure(Exception):
    """Base of every error of a call to the node."""


class RpcConnectionError(RpcFailure):
    """The node could not be reached or the connection broke."""


class RpcAuthError(RpcFailure):
    """The node refused the credentials."""


class RpcProtocolError(RpcFailure):
    """The answer is not a JSON-RPC reply."""


class RpcError(RpcFailure):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        self.method = method
        self.code = code
        self.message = message
        super().__init__(f"{method}: {message} (code {code})")


@dataclass(frozen=True)
class NodeEndpoint:
    """Where the node is and how to authenticate."""

    host: str
    port: int
    tls: bool = False
    user: str = ""
    password: str = ""
    cookie_file: str | None = None
    path: str = "/"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{self.path if self.path != '/' else ''}"


def parse_node_url(url: str, user: str | None = None, password: str | None = None,
                   cookie_file: str | None = None) -> NodeEndpoint:
    """Parse ``http://[USER:PASS@]HOST:PORT[/wallet/…]`` (or https).  ``user``/``password``
    override the URL's; ``cookie_file`` (a node's ``.cookie``) replaces both."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("node URL is empty")
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad node URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"node URL {url!r}: use http:// or https:// for --solo "
                         f"(got {scheme}://)")
    if not parts.hostname:
        raise ValueError(f"node URL {url!r} has no host")
    if port is None:
        raise ValueError(f"node URL {url!r} needs a port (e.g. http://127.0.0.1:8332)")
    if port == 0:
        raise ValueError(f"node URL {url!r}: port 0 is not valid")
    if parts.query or parts.fragment:
        raise ValueError(f"node URL {url!r}: unexpected query or fragment")
    url_user = unquote(parts.username) if parts.username else ""
    url_pass = unquote(parts.password) if parts.password else ""
    if cookie_file is not None and (user or password or url_user or url_pass):
        raise ValueError("give the RPC credentials either as user:password or as a cookie "
                         "file (--rpc-cookie), not both")
    return NodeEndpoint(host=parts.hostname, port=port, tls=scheme == "https",
                        user=user if user is not None else url_user,
                        password=password if password is not None else url_pass,
                        cookie_file=cookie_file, path=parts.path or "/")


def read_cookie(path: str) -> tuple[str, str]:
    """(user, password) from a node's cookie file (``__cookie__:hex``)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RpcAuthError(f"cannot read the RPC cookie file {path}: "
                           f"{exc.strerror or exc}") from None
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise RpcAuthError(f"RPC cookie file {path} is not USER:PASSWORD")
    return user, password


class RpcClient:
    """JSON-RPC 1.0 calls to one node (``await client.call("getblockcount")``)."""

    def __init__(self, endpoint: NodeEndpoint, *, timeout: float = 30.0,
                 connect_timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._ids = itertools.count(1)

    def _auth_header(self) -> str:
        ep = self.endpoint
        if ep.cookie_file is not None:
            user, password = read_cookie(ep.cookie_file)
        else:
            user, password = ep.user, ep.password
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return f"Basic {token}"

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.endpoint.tls:
            return None
        return self._ssl_context or ssl.create_default_context()

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """Call ``method`` and return its ``result``; raise an :class:`RpcFailure`."""
        limit = self.timeout if timeout is None else timeout
        body = json.dumps({"jsonrpc": "1.0", "id": next(self._ids), "method": method,
                           "params": list(params)}).encode()
        try:
            status, reason, payload = await asyncio.wait_for(self._post(body), limit)
        except TimeoutError:
            raise RpcConnectionError(f"{method}: no answer from {self.endpoint} within "
                                     f"{limit:g} s") from None
        return self._decode(method, status, reason, payload)

    async def _post(self, body: bytes) -> tuple[int, str, bytes]:
        ep = self.endpoint
        auth = self._auth_header()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(ep.host, ep.port, ssl=self._ssl(),
                                        server_hostname=ep.host if ep.tls else None,
                                        limit=_MAX_HEADER_BYTES),
                self.connect_timeout)
        except TimeoutError:
            raise RpcConnectionError(f"cannot connect to the node at {ep}: timed out") from None
        except ssl.SSLError as exc:
            raise RpcConnectionError(f"TLS with the node at {ep} failed: {exc}") from None
        except OSError as exc:
            raise RpcConnectionError(f"cannot connect to the node at {ep}: "
                                     f"{exc.strerror or exc}") from None
        try:
            host = f"[{ep.host}]" if ":" in ep.host else ep.host
            head = (f"POST {ep.path} HTTP/1.1\r\nHost: {host}:{ep.port}\r\n"
                    f"Authorization: {auth}\r\nContent-Type: application/json\r\n"
                    f"User-Agent: sgm\r\nContent-Length: {len(body)}\r\n"
                    f"Connection: close\r\n\r\n")
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            return await self._read_response(reader)
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            raise RpcConnectionError(f"connection to the node at {ep} broke: "
                                     f"{exc or type(exc).__name__}") from None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _read_response(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        ep = self.endpoint
        try:
            status_line = await reader.readline()
        except ValueError:
            raise RpcProtocolError(f"the node at {ep} sent an overlong status line") from None
        if not status_line:
            raise RpcConnectionError(f"the node at {ep} closed the connection without an answer")
        parts = status_line.decode("latin-1").strip().split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise RpcProtocolError(f"the node at {ep} did not answer HTTP "
                                   f"({status_line[:60]!r})")
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        total = 0
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                raise RpcProtocolError(f"the node at {ep} sent an overlong header line") from None
            total += len(line)
            if total > _MAX_HEADER_BYTES:
                raise RpcProtocolError(f"the node at {ep} sent more than 64 KiB of headers")
            if not line:
                raise RpcConnectionError(f"the node at {ep} closed the connection mid-answer")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            payload = await self._read_chunked(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise RpcProtocolError(f"the node at {ep} sent a bad Content-Length") from None
            if not 0 <= length <= MAX_RESPONSE_BYTES:
                raise RpcProtocolError(f"the node at {ep} announced {length} bytes (limit "
                                       f"{MAX_RESPONSE_BYTES})")
            try:
                payload = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise RpcConnectionError(f"the node at {ep} closed the connection "
                                         "mid-answer") from None
        else:
            payload = await self._read_to_eof(reader)
        return status, reason, payload

    async def _read_to_eof(self, reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise RpcProtocolError(f"the node at {self.endpoint} sent more than "
                                       f"{MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = await reader.readline()
            try:
                n = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise RpcProtocolError(f"the node at {self.endpoint} sent a bad chunk header") from None
            if n == 0:
                return b"".join(chunks)
            size += n
            if size > MAX_RESPONSE_BYTES:
                raise RpcProtocolError(f"the node at {self.endpoint} sent more than "
                                       f"{MAX_RESPONSE_BYTES} bytes")
            try:
                chunks.append(await reader.readexactly(n))
                await reader.readexactly(2)
            except asyncio.IncompleteReadError:
                raise RpcConnectionError(f"the node at {self.endpoint} closed the connection "
                                         "mid-answer") from None

    def _decode(self, method: str, status: int, reason: str, payload: bytes) -> Any:
        ep = self.endpoint
        if status in (401, 403):
            how = (f"the cookie file {ep.cookie_file} (is it this node's?)" if ep.cookie_file
                   else "the user and password (-u/-p, the URL's USER:PASS@, or --rpc-cookie)")
            raise RpcAuthError(f"the node at {ep} refused the RPC credentials "
                               f"(HTTP {status} {reason}): check {how}".replace("  ", " "))
        try:
            reply = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            snippet = payload[:80].decode("utf-8", "replace").strip()
            raise RpcProtocolError(f"{method}: the node at {ep} answered HTTP {status} "
                                   f"{reason} with something that is not JSON"
                                   f"{f' ({snippet!r})' if snippet else ' (empty body)'}") from None
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise RpcProtocolError(f"{method}: the node at {ep} answered JSON that is not a "
                                   "JSON-RPC reply")
        error = reply.get("error")
        if error is not None:
            if isinstance(error, dict):
                code = error.get("code")
                message = error.get("message")
                raise RpcError(method, code if isinstance(code, int) else None,
                               str(message) if message is not None else json.dumps(error))
            raise RpcError(method, None, str(error))
        if status != 200:
            raise RpcProtocolError(f"{method}: the node at {ep} answered HTTP {status} {reason}")
        return reply.get("result")
