"""Stratum v1 wire messages: one JSON object per ``\\n``-terminated line.

``decode_line`` turns a line into a :class:`Request` (it has a ``method``; ``id`` None means
a notification) or a :class:`Response` (it has ``result``/``error``), and raises
:class:`StratumError` with a clear message for anything else: bytes that are not UTF-8,
non-JSON, a JSON value that is not an object, wrong field types, lines over
``MAX_LINE_BYTES``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sgm.checks import is_int

__all__ = [
    "MAX_LINE_BYTES", "StratumError", "decode_json", "Request", "Response", "decode_line", "encode_request",
    "encode_response", "make_error", "parse_error", "ERROR_CODES",
]

#: Longest line either side accepts (bytes, newline excluded).
MAX_LINE_BYTES = 64 * 1024

#: The customary Stratum v1 error codes.
ERROR_CODES: dict[int, str] = {
    20: "Other/Unknown",
    21: "Job not found",
    22: "Duplicate share",
    23: "Low difficulty share",
    24: "Unauthorized worker",
    25: "Not subscribed",
}


class StratumError(ValueError):
    """A line that is not a valid Stratum v1 message."""


MessageId = int | str | None


def _check_id(value: Any) -> MessageId:
    if value is None or isinstance(value, str):
        return value
    if is_int(value):
        message_id: int = value
        return message_id
    raise StratumError(f"message id must be an int, a string or null, got {type(value).__name__}")


@dataclass(frozen=True)
class Request:
    """A method call; with ``id`` None it is a notification (no reply expected)."""

    id: MessageId
    method: str
    params: list[Any] = field(default_factory=list)

    @property
    def is_notification(self) -> bool:
        return self.id is None

    def encode(self) -> str:
        return encode_request(self.id, self.method, self.params)


@dataclass(frozen=True)
class Response:
    """A reply to a request.  ``reject_reason`` carries the non-standard
    ``"reject-reason"`` member some pools add."""

    id: MessageId
    result: Any = None
    error: Any = None
    reject_reason: str | None = None

    @property
    def ok(self) -> bool:
        """No error and a result that is not false/null."""
        return self.error is None and self.result is not None and self.result is not False

    @property
    def error_code(self) -> int | None:
        parsed = parse_error(self.error)
        return parsed[0] if parsed else None

    @property
    def error_message(self) -> str | None:
        """Error text (or the reject reason) in readable form; None when there is none."""
        parsed = parse_error(self.error)
        if parsed:
            return parsed[1]
        return self.reject_reason

    def encode(self) -> str:
        return encode_response(self.id, self.result, self.error)


def _reject_constant(name: str) -> Any:
    raise StratumError(f"JSON constant {name} is not allowed")


#: One decoder for every line: json.loads with a keyword argument builds a new JSONDecoder
#: per call, which costs more than parsing a mining.submit line.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
#: json.loads refuses a str that starts with a byte order mark; decode_line keeps that.
_BOM = "\ufeff"
#: the decoder's own C scanner (an instance attribute, not in the type stubs)
_scan_json: Callable[[str, int], tuple[Any, int]] = vars(_DECODER)["scan_once"]


def decode_json(text: str) -> Any:
    """The JSON value that starts ``text`` (only whitespace may follow), read as decode_line
    reads it (NaN/Infinity refused); ValueError otherwise, also for leading whitespace.

    For a hot path that looks at the object itself: whatever this accepts, decode_line
    reads the same way, and for anything it refuses decode_line gives the exact error.
    """
    try:
        obj, end = _scan_json(text, 0)   # the C scanner, without decode()'s Python wrapper
    except StopIteration:
        raise ValueError("no JSON value at the start") from None
    if end != len(text) and not text[end:].isspace():
        raise ValueError("extra data after the JSON value")
    return obj


def decode_line(line: str | bytes | bytearray) -> Request | Response:
    """Parse one line (trailing CR/LF allowed).  Raises StratumError on malformed input."""
    if isinstance(line, (bytes, bytearray)):
        if len(line) > MAX_LINE_BYTES + 2:
            raise StratumError(f"line too long: {len(line)} bytes (limit {MAX_LINE_BYTES})")
        try:
            text = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StratumError(f"line is not UTF-8: {exc}") from None
    elif isinstance(line, str):
        text = line
        if len(text) > MAX_LINE_BYTES + 2 or len(text.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES + 2:
            raise StratumError(f"line too long: {len(text)} characters (limit {MAX_LINE_BYTES} bytes)")
    else:
        raise StratumError(f"expected a line of text, got {type(line).__name__}")
    text = text.strip()
    if not text:
        raise StratumError("empty line")
    try:
        if text.startswith(_BOM):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        obj = _DECODER.decode(text)
    except StratumError:
        raise
    except (ValueError, RecursionError) as exc:
        raise StratumError(f"not JSON: {exc} (line starts {text[:60]!r})") from None
    if not isinstance(obj, dict):
        raise StratumError(f"expected a JSON object, got {type(obj).__name__}")
    msg_id = _check_id(obj.get("id"))
    if "method" in obj:
        method = obj["method"]
        if not isinstance(method, str) or not method:
            raise StratumError(f"method must be a non-empty string, got {method!r}")
        params = obj.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            raise StratumError(f"{method}: params must be a list, got {type(params).__name__}")
        return Request(msg_id, method, params)
    if "result" in obj or "error" in obj:
        reason = obj.get("reject-reason")
        if reason is not None and not isinstance(reason, str):
            reason = str(reason)
        return Response(msg_id, obj.get("result"), obj.get("error"), reason)
    raise StratumError("neither a request (no 'method') nor a response (no 'result'/'error')")


def _dumps(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    if len(text) > MAX_LINE_BYTES:
        raise StratumError(f"message too long to send: {len(text)} bytes")
    return text + "\n"


def encode_request(msg_id: MessageId, method: str, params: list[Any]) -> str:
    """One request line, newline-terminated."""
    return _dumps({"id": _check_id(msg_id), "method": method, "params": list(params)})


def encode_response(msg_id: MessageId, result: Any, error: Any = None) -> str:
    """One response line, newline-terminated."""
    return _dumps({"id": _check_id(msg_id), "result": result, "error": error})


def make_error(code: int, message: str | None = None) -> list[Any]:
    """The customary error triple ``[code, message, null]``."""
    return [code, message or ERROR_CODES.get(code, "Error"), None]


def parse_error(error: Any) -> tuple[int | None, str] | None:
    """Normalize the error shapes pools use: ``[code, msg, data]``, ``{"code":..,"message":..}``,
    a bare string or number.  None when there is no error."""
    if error is None or error is False:
        return None
    if isinstance(error, (list, tuple)):
        code = error[0] if error and is_int(error[0]) else None
        msg = next((str(x) for x in error[1:2] if x is not None), None)
        if msg is None:
            msg = ERROR_CODES.get(code, "error") if code is not None else json.dumps(list(error))
        return code, msg
    if isinstance(error, dict):
        code = error.get("code")
        code = code if is_int(code) else None
        msg = error.get("message") or error.get("msg") or (ERROR_CODES.get(code) if code is not None else None)
        return code, str(msg) if msg is not None else json.dumps(error)
    if isinstance(error, bool):
        return None, "error"
    if isinstance(error, int):
        return error, ERROR_CODES.get(error, "error")
    return None, str(error)
