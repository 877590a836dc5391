"""The config file's schema: every key, its type, range and meaning, read one way.

Why one schema: ``sgm -c FILE`` and the desktop app read the same JSON file, and when each
had its own parser they drifted (the app ignored ``suggest-diff``).  Here each key is
declared once (:data:`KEYS`); :func:`read_config` checks a file's object against it and
:func:`miner_config` turns the values (file values under command-line flags) into the
engine's :class:`~sgm.miner.MinerConfig`, so a key reaches the miner the same way from
either front end.

Two modes, because the two readers owe the user different things:

* strict (``sgm``): the first bad value is a :class:`ConfigError` (a usage error, exit
  status 2) whose message names the file and the key;
* lenient (the app): a bad value is a :class:`Problem` -- that key falls back to its
  default, every other key is read -- and the key is listed in ``ConfigFile.unread`` so
  the app can leave the file's value as it is.

Null means "not set" (the default) in both modes.  Keys ``sgm`` does not use (the app's
``gui`` section, the farm's ``rigs``) are accepted by ``sgm`` and not checked by it.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import math
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sgm.cli_args import UsageError, pool_flags
from sgm.devices import DEFAULT_DEVICES, check_device_selection

if TYPE_CHECKING:
    from sgm.miner import MinerConfig, PoolConfig
    from sgm.solo.client import SoloConfig

__all__ = [
    "APP_KEYS", "GUI_KEYS", "KEYS", "ConfigError", "ConfigFile", "FieldError", "Key",
    "PoolEntry", "Problem", "check_pool", "config_warnings", "flag_values", "json_type",
    "miner_config", "read_config",
]

#: Who reads a key: the miner (both front ends), solo mining and a run's own options
#: (``sgm`` only), the app's window, the farm view.
Scope = Literal["miner", "solo", "run", "gui", "farm"]
Reader = Literal["sgm", "app"]

#: The scopes each reader checks; the other known keys are accepted and left alone.
_CHECKED: dict[str, frozenset[str]] = {
    "sgm": frozenset({"miner", "solo", "run"}),
    "app": frozenset({"miner", "gui", "farm"}),   # the app also keeps the Rigs tab's list
}


class FieldError(ValueError):
    """One value's problem, worded without the key ("must be ..., got ...")."""


class ConfigError(UsageError):
    """A configuration the strict reader refuses; ``key`` is the key it names (None when
    the problem is the file itself or a combination of keys)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Problem:
    """A value the lenient reader could not use: ``key`` (``threads``, ``pools[1]``,
    ``gui.geometry``), what is wrong, and what is used instead."""

    key: str
    message: str
    fallback: str

    def text(self, where: str) -> str:
        return f'{where}: "{self.key}" {self.message}; {self.fallback}'


@dataclass(frozen=True)
class PoolEntry:
    """One ``pools`` entry as written: user and password None where the file (or the
    command line) gives none -- a pool then gets "" and "x", a solo node no credentials."""

    url: str
    user: str | None = None
    password: str | None = None

    def pool_config(self) -> PoolConfig:
        from sgm.miner import PoolConfig

        return PoolConfig(self.url, "" if self.user is None else self.user,
                          "x" if self.password is None else self.password)


# --------------------------------------------------------------------------- value types
def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages a user can map onto the file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _got(value: Any) -> str:
    """", got ..." with the value where it is short enough to help."""
    if isinstance(value, bool):
        return f"got a boolean ({'true' if value else 'false'})"
    if isinstance(value, (int, float)):
        text = repr(value)
        return f"got {text if len(text) <= 24 else text[:21] + '...'}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"got a string ({shown!r})"
    return f"got {json_type(value)}"


def _finite(value: Any) -> float | None:
    """A JSON number as a float (None for a bool, a non-number or an overflowing int)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def whole(lo: int, hi: int | None) -> Callable[[Any], int]:
    """A whole number in lo..hi (hi None: no upper bound)."""
    words = f"a whole number in {lo}..{hi}" if hi is not None else f"a whole number >= {lo}"

    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) \
                or value < lo or (hi is not None and value > hi):
            raise FieldError(f"must be {words}, {_got(value)}")
        return value
    return parse


def number(lo: float, hi: float | None, *, lo_open: bool = False) -> Callable[[Any], float]:
    """A finite number in lo..hi (``lo_open``: above lo, as a positive number is)."""
    if lo_open and lo == 0 and hi is None:
        words = "a positive number"
    elif hi is None:
        words = f"a number >= {lo:g}"
    else:
        words = f"a number in {lo:g}..{hi:g}"

    def parse(value: Any) -> float:
        x = _finite(value)
        if x is None or x < lo or (lo_open and x == lo) or (hi is not None and x > hi):
            raise FieldError(f"must be {words}, {_got(value)}")
        return x
    return parse


positive = number(0, None, lo_open=True)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldError(f"must be true or false, {_got(value)}")
    return value


def text(value: Any) -> str:
    """A non-empty string (file paths, addresses)."""
    if not isinstance(value, str):
        raise FieldError(f"must be a string, {_got(value)}")
    if not value.strip():
        raise FieldError("must not be empty")
    return value


def devices(value: Any) -> tuple[str, ...]:
    """The --devices text ("cpu,opencl-gpu") -> its kinds, checked."""
    if not isinstance(value, str):
        raise FieldError(f'must be a string like "cpu,opencl-gpu", {_got(value)}')
    kinds = split_devices(value)
    try:
        check_device_selection(kinds)
    except ValueError as exc:
        raise FieldError(str(exc).removeprefix("--devices: ")) from None
    return kinds


def split_devices(value: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in value.split(",") if k.strip())


def impl(value: Any) -> str:
    from sgm import _native

    name = text(value)
    try:
        _native.require_implementation(name)
    except ValueError as exc:
        raise FieldError(f"({name!r}): {exc}") from None
    return name


def ca_file(value: Any) -> str:
    """A PEM file of CA certificates that ssl can load."""
    path = text(value)
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise FieldError(f"{path}: no such file") from None
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise FieldError(f"{path}: not a usable CA certificate (PEM): "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    return path


def api_allow(value: Any) -> str:
    from sgm.ops.cgminer_api import parse_allow

    allow = text(value)
    try:
        parse_allow(allow)
    except ValueError as exc:
        raise FieldError(f"is not a cgminer allow list: {exc}") from None
    return allow


def listen(value: Any) -> tuple[str, int]:
    from sgm.ops.metrics import parse_listen

    try:
        return parse_listen(text(value))
    except ValueError as exc:
        raise FieldError(f"must be HOST:PORT or PORT: {exc}") from None


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldError(f"must be an object, {_got(value)}")
    return value


def json_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise FieldError(f"must be a list, {_got(value)}")
    return value


def names(value: Any) -> list[str]:
    """A list of names (strings), repeats dropped, order kept."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FieldError(f"must be a list of device names (strings), {_got(value)}")
    return list(dict.fromkeys(value))


def base64_text(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError(f"must be a base64 string, {_got(value)}")
    try:
        base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise FieldError("is not valid base64") from None
    return value


def _pools_type(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise FieldError(f"must be a list of pools, {_got(value)}")
    return value


# --------------------------------------------------------------------------- the schema
@dataclass(frozen=True)
class Key:
    """One key of the config file.

    ``parse`` checks a JSON value and returns it as the program uses it (FieldError
    otherwise); ``flag`` is the argparse dest of the command-line option of the same name;
    ``target`` the MinerConfig field it sets (``negate``: a "no-..." switch);
    ``fallback`` what the lenient reader uses instead of a bad value, in words."""

    name: str
    parse: Callable[[Any], Any]
    scope: Scope
    meaning: str
    fallback: str = "using the default"
    flag: str | None = None
    target: str | None = None
    negate: bool = False


_KEY_LIST: tuple[Key, ...] = (
    # the miner: both front ends
    Key("pools", _pools_type, "miner",
        'pools in priority order, each {"url", "user", "pass"} (user and pass optional: '
        '"" and "x"); none: the embedded local pool; with solo, the node as the one entry',
        "using the embedded local pool", target="pools"),
    Key("threads", whole(1, 1024), "miner", "CPU threads (default: one per core)",
        "using one thread per core", flag="threads", target="threads"),
    Key("devices", devices, "miner",
        'devices to mine with, comma separated: cpu, opencl, opencl-gpu or names from '
        '"sgm devices" (default cpu,opencl-gpu)',
        f"using the default devices ({','.join(DEFAULT_DEVICES)})", flag="devices",
        target="device_kinds"),
    Key("impl", impl, "miner", "CPU kernel (default: the fastest available)",
        "using the fastest kernel", flag="impl", target="impl"),
    Key("batch-time", number(0.001, 60), "miner",
        "seconds one batch should take on any device (default 0.1)", "using 0.1 s",
        flag="batch_time", target="batch_time"),
    Key("opencl-kernel-time", number(0.0005, 1), "miner",
        "seconds one OpenCL launch should take (default 0.005 on a GPU, 0.02 on an "
        "OpenCL CPU device)", "using the device's default", flag="opencl_kernel_time",
        target="opencl_kernel_time"),
    Key("reserve-cpu-core", boolean, "miner",
        "one CPU thread fewer per OpenCL GPU (for its host thread) when threads is not set",
        "using false", flag="reserve_cpu_core", target="reserve_core_per_gpu"),
    Key("jobs", whole(1, None), "miner",
        "embedded pool: jobs it issues, then mining stops (default: sgm 3, the app forever)",
        "using the default", flag="jobs", target="local_jobs"),
    Key("difficulty", whole(1, 255), "miner",
        "embedded pool: leading zero bits of the share target (default 20)", "using 20",
        flag="difficulty", target="local_difficulty_bits"),
    Key("duration", positive, "miner", "embedded pool: seconds per job (default 15)",
        "using 15 s", flag="duration", target="local_job_interval"),
    Key("no-version-rolling", boolean, "miner",
        "do not ask the pool for BIP 310 version rolling", "using false",
        flag="no_version_rolling", target="version_rolling", negate=True),
    Key("suggest-diff", positive, "miner",
        "share difficulty asked of the pool (mining.suggest_difficulty; fractions allowed)",
        "the pool chooses the difficulty", flag="suggest_diff", target="suggest_difficulty"),
    Key("cert", ca_file, "miner",
        "private CA certificate (PEM) to check a stratum+ssl:// pool (or an https:// node)",
        "using the system's CA certificates", flag="cert", target="ssl_cafile"),
    Key("no-verify", boolean, "miner", "do not check TLS certificates (insecure)",
        "certificates are checked", flag="no_verify", target="ssl_verify", negate=True),
    # solo mining: sgm only
    Key("solo", boolean, "solo",
        "solo mining against a node (getblocktemplate), its URL the one pools entry",
        "mining the pools", flag="solo"),
    Key("coinbase-addr", text, "solo", "solo: the address the block reward goes to",
        "no address", flag="coinbase_addr"),
    Key("rpc-cookie", text, "solo", "solo: the node's cookie file instead of USER:PASS",
        "no cookie file", flag="rpc_cookie"),
    # a run's own options: sgm only
    Key("time-limit", positive, "run", "stop after this many seconds", "no time limit",
        flag="time_limit"),
    Key("summary-json", text, "run", "write the final statistics as JSON to this file",
        "no summary file", flag="summary_json"),
    Key("quiet", boolean, "run", "print only the final statistics", "using false",
        flag="quiet"),
    Key("verbose", boolean, "run", "log more (INFO and up on stderr)", "using false",
        flag="verbose"),
    Key("api-listen", boolean, "run", "serve the cgminer-compatible API", "API off",
        flag="api_listen"),
    Key("api-port", whole(0, 65535), "run", "the API's port (default 4028)", "using 4028",
        flag="api_port"),
    Key("api-allow", api_allow, "run",
        "who may use the API, cgminer syntax [W:]IP[/PREFIX],... (default 127.0.0.1, "
        "read-only)", "127.0.0.1 read-only", flag="api_allow"),
    Key("metrics-listen", listen, "run",
        "serve Prometheus metrics at http://HOST:PORT/metrics (PORT alone: 127.0.0.1)",
        "no metrics", flag="metrics_listen"),
    Key("log-file", text, "run", "also log to this file (rotating)", "no log file",
        flag="log_file"),
    Key("sharelog", text, "run", "append each share's verdict to this CSV file",
        "no share log", flag="sharelog"),
    # the app's window and the farm view: sgm ignores them
    Key("gui", json_object, "gui", "the desktop app's own settings (see GUI_KEYS)",
        "using the window's defaults"),
    Key("rigs", json_list, "farm", 'the farm view\'s rigs, ["HOST:PORT", ...] (sgm farm -c)',
        "no rigs"),
)

#: Every key of the config file, by name, in the order they are documented.
KEYS: dict[str, Key] = {k.name: k for k in _KEY_LIST}

#: The keys inside "gui" (the app's window).
GUI_KEYS: dict[str, Key] = {k.name: k for k in (
    Key("version", whole(0, None), "gui", "layout version of this section", "ignored"),
    Key("disabled_devices", names, "gui", "devices switched off in the device table",
        "every device starts switched on"),
    Key("geometry", base64_text, "gui", "the window's size and place (Qt saveGeometry, base64)",
        "using the default window size"),
    Key("close_to_tray", boolean, "gui", "closing the window keeps sgm in the tray",
        "using false"),
)}

#: The keys the app reads (the others are sgm's; the app keeps them in the file).
APP_KEYS = tuple(k.name for k in _KEY_LIST if k.scope in _CHECKED["app"])

#: What a pools entry may hold ("password" is an older spelling of "pass").
POOL_FIELDS = ("url", "user", "pass", "password")


# --------------------------------------------------------------------------- pools
def _has_control_chars(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def check_pool(url: str, user: str, password: str) -> dict[str, str]:
    """``{field: message}`` for "url" / "user" / "password" of a Stratum pool; ``{}``
    when it is good.  The URL goes through the engine's own parser.  An empty user is
    allowed (the pool decides); the app's form asks for one on top of this."""
    from sgm.stratum.client import parse_pool_url

    errors: dict[str, str] = {}
    try:
        parse_pool_url(url)
    except ValueError as exc:
        errors["url"] = str(exc)
    if _has_control_chars(user) or user != user.strip():
        errors["user"] = "the user must not contain spaces at either end or control characters"
    if _has_control_chars(password):
        errors["password"] = "the password must not contain control characters (tabs, newlines)"
    return errors


def _pool_entry(entry: Any, stratum: bool) -> PoolEntry:
    """One pools entry, checked (FieldError says what is wrong)."""
    if not isinstance(entry, dict):
        raise FieldError(f'must be an object with "url", "user" and "pass", {_got(entry)}')
    unknown = sorted(set(entry) - set(POOL_FIELDS))
    if unknown:
        raise FieldError(f"has unknown key(s) {', '.join(unknown)}; a pool takes url, user, pass")
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise FieldError(f'needs a "url" string, {_got(url)}')
    user = entry.get("user")
    password = entry.get("pass", entry.get("password"))
    for name, value in (("user", user), ("pass", password)):
        if value is not None and not isinstance(value, str):
            raise FieldError(f'"{name}" must be a string, {_got(value)}')
    pool = PoolEntry(url.strip(), user, password)
    if stratum:
        errors = check_pool(pool.url, user or "", "x" if password is None else password)
        if errors:
            raise FieldError(f"({pool.url}): " + "; ".join(errors.values()))
    return pool


# --------------------------------------------------------------------------- reading
@dataclass
class ConfigFile:
    """What :func:`read_config` made of a file's object."""

    #: key -> value as the program uses it, for every key set (not null) and readable;
    #: "pools" is a list of PoolEntry, "gui" a dict of the GUI_KEYS read
    values: dict[str, Any] = field(default_factory=dict)
    #: lenient mode: the values that could not be used (strict mode raises instead)
    problems: list[Problem] = field(default_factory=list)
    #: keys whose value in the file was not (wholly) read: "threads", "pools",
    #: "gui.geometry", an unknown key ...
    unread: set[str] = field(default_factory=set)


def read_config(data: Mapping[str, Any], where: str, *, strict: bool, reader: Reader = "sgm",
                solo: bool = False) -> ConfigFile:
    """Check a config file's object against the schema.

    ``where`` starts each message ("config file PATH"); ``reader`` says whose keys are
    checked (``sgm``: the miner's, solo and run keys; ``app``: the miner's and ``gui``);
    ``solo``: the command line asked for solo mining (then the pools entry is a node, not
    a Stratum pool).  Strict: raises ConfigError naming the first bad key.  Lenient: each
    bad value becomes a Problem and only that key falls back.
    """
    out = ConfigFile()
    checked = _CHECKED[reader]
    # the pools entry of a solo config is the node (checked as one when mining starts)
    solo = solo or (KEYS["solo"].scope in checked and data.get("solo") is True)

    def bad(key: str, message: str, fallback: str) -> None:
        if strict:
            raise ConfigError(f"{where}: {key} {message}", key)
        out.problems.append(Problem(key, message, fallback))
        out.unread.add(key.partition("[")[0])

    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        if strict:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(KEYS))}", unknown[0])
        for name in unknown:
            bad(name, "is not a key sgm knows (a typo?)", "ignored, and kept in the file")

    for key in _KEY_LIST:
        raw = data.get(key.name)
        if raw is None or key.scope not in checked:
            continue
        try:
            value = key.parse(raw)
        except FieldError as exc:
            bad(key.name, str(exc), key.fallback)
            continue
        if key.name == "pools":
            value = _read_pools(value, stratum=not solo, bad=bad)
        elif key.name == "gui":
            value = _read_section(value, GUI_KEYS, "gui", bad)
        out.values[key.name] = value

    if reader == "app" and isinstance(data.get("solo"), bool) and data["solo"]:
        bad("solo", "is on: solo mining runs under sgm only (sgm --solo -c FILE)",
            "the app mines the pools")
    if "cert" in out.values and out.values.get("no-verify"):
        # lenient: the safer of two contradicting keys wins
        bad("no-verify", "contradicts cert (a private CA): give one of them",
            "certificates are checked")
        del out.values["no-verify"]
    return out


def _read_pools(entries: list[Any], stratum: bool,
                bad: Callable[[str, str, str], None]) -> list[PoolEntry]:
    """Each entry stands alone: in the lenient mode one bad pool does not cost the others."""
    pools: list[PoolEntry] = []
    for i, entry in enumerate(entries):
        try:
            pools.append(_pool_entry(entry, stratum))
        except FieldError as exc:
            bad(f"pools[{i}]", str(exc), "pool skipped")
    return pools


def _read_section(section: dict[str, Any], keys: dict[str, Key], prefix: str,
                  bad: Callable[[str, str, str], None]) -> dict[str, Any]:
    """A nested object's known keys, each checked alone; keys it does not know (a newer
    version's) are left to the caller, never refused."""
    values: dict[str, Any] = {}
    for name, key in keys.items():
        raw = section.get(name)
        if raw is None:
            continue
        try:
            values[name] = key.parse(raw)
        except FieldError as exc:
            bad(f"{prefix}.{name}", str(exc), key.fallback)
    return values


# --------------------------------------------------------------------------- flags
def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, by config key, checked as the file's values
    are (an option not given, or a switch left off, is absent).  ``-o/-u/-p`` become
    "pools" (one node with ``--solo``); raises ConfigError naming the flag at fault."""
    out: dict[str, Any] = {}
    for key in _KEY_LIST:
        if key.flag is None:
            continue
        value = getattr(args, key.flag, None)
        if value is None or value is False:
            continue
        try:   # the same checks as the file's values, the message naming the flag
            out[key.name] = key.parse(value)
        except FieldError as exc:
            raise ConfigError(f"--{key.name} {exc}", key.name) from None
    urls = list(getattr(args, "url", None) or [])
    users = list(getattr(args, "user", None) or [])
    passwords = list(getattr(args, "password", None) or [])
    if out.get("solo"):
        if len(urls) > 1:
            raise ConfigError("--solo mines one node: give a single -o http://HOST:PORT", "pools")
        if len(users) > 1 or len(passwords) > 1:
            raise ConfigError("--solo: give at most one -u and one -p", "pools")
        if not urls and (users or passwords):
            raise ConfigError("-u/-p given without -o: name the node's URL with -o", "pools")
        if urls:
            out["pools"] = [PoolEntry(urls[0], users[0] if users else None,
                                      passwords[0] if passwords else None)]
    elif urls or users or passwords:
        try:
            out["pools"] = [PoolEntry(*flags) for flags in pool_flags(urls, users, passwords)]
        except UsageError as exc:
            raise ConfigError(str(exc), "pools") from None
    return out


# --------------------------------------------------------------------------- the miner
def miner_config(values: Mapping[str, Any], *, jobs_default: int | None = 3) -> MinerConfig:
    """The MinerConfig of the values of :func:`read_config` and :func:`flag_values`
    (flags merged over the file): the one way a key reaches the miner.  ``jobs_default``:
    the embedded pool's job count when "jobs" is not set (the app: None, forever).
    Raises ConfigError for a combination the miner refuses."""
    from sgm.miner import MinerConfig

    kwargs: dict[str, Any] = {"local_jobs": jobs_default}
    for key in _KEY_LIST:
        if key.target is None or key.name == "pools" or key.name not in values:
            continue
        value = values[key.name]
        kwargs[key.target] = (not value) if key.negate else value
    for name in ("batch_time", "local_job_interval", "opencl_kernel_time", "suggest_difficulty"):
        if kwargs.get(name) is not None:
            kwargs[name] = float(kwargs[name])
    if "ssl_cafile" in kwargs:
        try:
            ca_file(kwargs["ssl_cafile"])
        except FieldError as exc:
            raise ConfigError(f"--cert {exc}", "cert") from None
        if kwargs.get("ssl_verify") is False:
            raise ConfigError("--cert and --no-verify contradict each other: give one of them",
                              "cert")
    pools: list[PoolEntry] = list(values.get("pools") or [])
    if values.get("solo"):
        if kwargs.get("suggest_difficulty") is not None:
            raise ConfigError("--suggest-diff is a pool option; it does not apply to --solo",
                              "suggest-diff")
        kwargs["solo"] = _solo_config(values, pools)
    else:
        kwargs["pools"] = [p.pool_config() for p in pools]
    cfg = MinerConfig(**kwargs)
    try:
        cfg.validate()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return cfg


def _solo_config(values: Mapping[str, Any], pools: list[PoolEntry]) -> SoloConfig:
    from sgm.solo.client import SoloConfig

    if len(pools) != 1:
        raise ConfigError("--solo needs the node's URL: -o http://USER:PASS@HOST:PORT "
                          "(or one entry in the config file's pools)", "pools")
    address = values.get("coinbase-addr")
    if not address:
        raise ConfigError("--solo needs --coinbase-addr ADDRESS (where the block reward goes)",
                          "coinbase-addr")
    node = pools[0]
    cfg = SoloConfig(url=node.url, address=address, user=node.user, password=node.password,
                     cookie_file=values.get("rpc-cookie"))
    try:
        cfg.validate()
    except ValueError as exc:
        raise ConfigError(f"--solo: {exc}", "solo") from None
    return cfg


_TLS_SCHEMES = ("stratum+ssl", "stratum+tcps", "stratum+tls", "ssl:", "tls:")


def config_warnings(cfg: MinerConfig) -> list[str]:
    """What a user should hear about a valid configuration (insecure or idle options)."""
    warnings: list[str] = []
    uses_tls = any(p.url.strip().lower().startswith(_TLS_SCHEMES) for p in cfg.pools) or (
        cfg.solo is not None and cfg.solo.url.strip().lower().startswith("https:"))
    if not cfg.ssl_verify:
        warnings.append("--no-verify: TLS certificates are not checked; anyone on the path "
                        "can impersonate the pool")
    if (cfg.ssl_cafile is not None or not cfg.ssl_verify) and not uses_tls:
        warnings.append("--cert/--no-verify have no effect: no stratum+ssl:// pool "
                        "(or https:// node) is used")
    return warnings
