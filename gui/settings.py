"""The desktop app's settings, kept in the same JSON file the CLI reads with ``sgm -c FILE``.

Why one file: a user who set pools up in the window can mine the same pools headless with
``sgm -c ~/.config/sgm/sgm.json``, and the reverse.  So the app writes exactly the CLI's shapes
(``pools`` as ``[{"url", "user", "pass"}]``, ``threads`` an int, ``devices`` the ``--devices``
text, ``rigs`` the ``"HOST:PORT"`` list ``sgm farm -c`` watches) and puts what only the
window needs under the ``"gui"`` key, which the CLI accepts and ignores.  Keys the app does
not own (``difficulty``, ``jobs``, ...) survive every save.

Loading never raises and never writes: a bad field gives one warning naming it and falls back
to its default while every other field loads; unparseable JSON gives defaults and a warning and
the file stays as it is.  Saving is atomic (temp file in the same folder, fsync, rename), the
previous file is kept as ``<path>.bak``.

Nothing the user wrote is lost behind their back: a value the app could not read is kept in
the file as it was, save after save, until the user changes that setting in the app
(``GuiSettings.unread``); a file that is not a JSON object is never replaced unless the
caller says the user agreed (``save_settings(..., replace_unreadable=True)``).  A file that
holds pool passwords and that other users can read gets a warning at load and is made
owner-only (0600) at the next save, which the log says.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgm.api import PoolConfig, check_device_selection, normalize_pool_url, parse_rig

log = logging.getLogger("sgm.gui.settings")

#: Layout of the "gui" object; a newer file's extra keys are kept, never dropped.
SCHEMA_VERSION = 1
#: Keys of the CLI's config file that the app writes (everything else is kept as found).
OWNED_KEYS = ("pools", "threads", "devices", "rigs")
#: Keys inside "gui" that the app writes.
OWNED_GUI_KEYS = ("version", "disabled_devices", "geometry", "close_to_tray")
#: Same range MinerConfig.validate() accepts.
THREADS_RANGE = (1, 1024)


@dataclass
class GuiSettings:
    """What the window remembers between runs (see the module docstring for the file)."""

    pools: list[PoolConfig] = field(default_factory=list)   # [] = the embedded local pool
    threads: int | None = None                               # CPU threads (None: one per core)
    devices: str | None = None                               # the CLI's --devices text
    disabled_devices: list[str] = field(default_factory=list)  # switched off in the device table
    geometry: str | None = None                              # base64 of saveGeometry()
    close_to_tray: bool = False
    #: the Rigs tab's miners, "HOST:PORT" as ``sgm farm -c`` reads them
    rigs: list[str] = field(default_factory=list)
    #: keys whose value in the file could not be read ("threads", "pools", "gui",
    #: "gui.geometry", ...): saves keep the file's value until the user changes the setting
    #: (then the window discards the key here)
    unread: set[str] = field(default_factory=set, compare=False)


class UnreadableSettingsFile(ValueError):
    """The settings file is there but is not a JSON object: replacing it needs the user's
    consent (``save_settings(..., replace_unreadable=True)``)."""


def default_config_path() -> Path:
    """``<user config dir>/sgm/sgm.json`` (e.g. ``~/.config/sgm/sgm.json`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("sgm")) / "sgm.json"


# --------------------------------------------------------------------------- validation
def _has_control_chars(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def validate_pool(url: str, user: str, password: str) -> dict[str, str]:
    """``{field: message}`` for "url" / "user" / "password"; ``{}`` when the pool is good.

    The URL goes through the engine's own parser, so the form refuses exactly what mining
    would refuse later, with the same words.
    """
    errors: dict[str, str] = {}
    if not isinstance(url, str) or not url.strip():
        errors["url"] = "Enter the pool URL, e.g. stratum+tcp://pool.example.com:3333"
    else:
        try:
            normalize_pool_url(url)
        except ValueError as exc:
            errors["url"] = str(exc)[:1].upper() + str(exc)[1:]
    if not isinstance(user, str) or not user.strip():
        errors["user"] = "Enter the pool user (usually wallet.worker); it cannot be empty"
    elif _has_control_chars(user) or user != user.strip():
        errors["user"] = "The user must not contain spaces at either end or control characters"
    if not isinstance(password, str):
        errors["password"] = "The password must be text"
    elif _has_control_chars(password):
        errors["password"] = "The password must not contain control characters (tabs, newlines)"
    return errors


def normalize_rig(text: str) -> str:
    """``text`` as the config file keeps a rig: ``HOST:PORT`` (port 4028 when left out).
    Raises ValueError with the farm parser's own words (the one ``sgm farm`` uses)."""
    if not isinstance(text, str):
        raise ValueError(f"a rig must be a \"HOST:PORT\" string, got {_json_type(text)}")
    if _has_control_chars(text):
        raise ValueError(f"{text!r}: a rig address must not contain control characters")
    return str(parse_rig(text))


def _pool_from_entry(entry: Any, where: str) -> tuple[PoolConfig | None, str | None]:
    """One ``pools[i]`` object of the file -> (PoolConfig, None) or (None, warning)."""
    if not isinstance(entry, dict):
        return None, f"{where}: must be an object with \"url\", \"user\" and \"pass\"; skipped"
    url, user = entry.get("url"), entry.get("user", "")
    password = entry.get("pass", entry.get("password", "x"))
    for name, value in (("url", url), ("user", user), ("pass", password)):
        if not isinstance(value, str):
            return None, (f"{where}: \"{name}\" must be a string, got "
                          f"{_json_type(value)}; pool skipped")
    errors = validate_pool(url, user, password)
    if errors:
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
        return None, f"{where} ({url}): {detail}; pool skipped"
    return PoolConfig(url.strip(), user, password), None


def _json_type(value: Any) -> str:
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


# --------------------------------------------------------------------------- load
def load_settings(path: str | os.PathLike[str]) -> tuple[GuiSettings, list[str]]:
    """Read the settings from ``path``; never raises, never writes.

    Returns the settings and one warning per problem (each names the file and the field).
    A missing file gives the defaults and no warning.
    """
    path = Path(path)
    settings = GuiSettings()
    warnings: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return settings, warnings
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        warnings.append(f"Settings file {path} could not be read ({reason}); "
                        "using the defaults, the file is left as it is")
        return settings, warnings
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        warnings.append(f"Settings file {path} is not valid JSON (line {exc.lineno}: {exc.msg}); "
                        "using the defaults, the file is left as it is")
        return settings, warnings
    except RecursionError:
        warnings.append(f"Settings file {path} is nested too deeply to read; using the defaults")
        return settings, warnings
    if not isinstance(data, dict):
        warnings.append(f"Settings file {path} must hold a JSON object, got {_json_type(data)}; "
                        "using the defaults, the file is left as it is")
        return settings, warnings

    where = f"Settings file {path}"

    def bad(key: str, message: str) -> None:
        warnings.append(f"{where}: \"{key}\" {message}")
        settings.unread.add(key)

    # pools: each entry stands alone, so one bad pool does not cost the others
    raw_pools = data.get("pools")
    if raw_pools is not None:
        if not isinstance(raw_pools, list):
            bad("pools", f"must be a list of pools, got {_json_type(raw_pools)}; "
                "using the embedded local pool")
        else:
            for i, entry in enumerate(raw_pools):
                pool, warning = _pool_from_entry(entry, f"{where}: pools[{i}]")
                if pool is not None:
                    settings.pools.append(pool)
                else:
                    warnings.append(warning or f"{where}: pools[{i}] skipped")
                    settings.unread.add("pools")   # the skipped entry stays in the file

    threads = data.get("threads")
    if threads is not None:
        lo, hi = THREADS_RANGE
        if isinstance(threads, bool) or not isinstance(threads, int):
            bad("threads", f"must be a whole number, got {_json_type(threads)}; "
                "using one thread per core")
        elif not lo <= threads <= hi:
            bad("threads", f"must be in {lo}..{hi}, got {threads}; using one thread per core")
        else:
            settings.threads = threads

    devices = data.get("devices")
    if devices is not None:
        if not isinstance(devices, str):
            bad("devices", f"must be a string like \"cpu,opencl-gpu\", got {_json_type(devices)}; "
                "using the default devices")
        else:
            kinds = tuple(k.strip() for k in devices.split(",") if k.strip())
            try:
                check_device_selection(kinds)
            except ValueError as exc:
                bad("devices", f"{exc}; using the default devices")
            else:
                settings.devices = ",".join(kinds)

    raw_rigs = data.get("rigs")
    if raw_rigs is not None:
        if not isinstance(raw_rigs, list):
            bad("rigs", f"must be a list of \"HOST:PORT\" strings, got {_json_type(raw_rigs)}; "
                "the Rigs tab starts empty")
        else:
            # each rig stands alone; one that cannot be read keeps the whole list as the
            # file has it (GuiSettings.unread) until the user edits the rigs
            for i, entry in enumerate(raw_rigs):
                try:
                    rig = normalize_rig(entry)
                except ValueError as exc:
                    warnings.append(f"{where}: rigs[{i}]: {exc}; rig skipped")
                    settings.unread.add("rigs")
                    continue
                if rig not in settings.rigs:
                    settings.rigs.append(rig)

    gui = data.get("gui")
    if gui is not None:
        if not isinstance(gui, dict):
            bad("gui", f"must be an object, got {_json_type(gui)}; using the window's defaults")
        else:
            _load_gui_section(gui, settings, lambda key, msg: bad(f"gui.{key}", msg))
    exposed = _readable_by_others(path)
    if exposed and _holds_passwords(data):
        warnings.append(f"Settings file {path} holds pool passwords and other users can read "
                        f"it (mode {exposed:04o}); sgm makes it readable by you only (0600) at "
                        f"its next save, or run: chmod 600 {path}")
    for message in warnings:
        log.warning("%s", message)
    return settings, warnings


def _load_gui_section(gui: dict[str, Any], settings: GuiSettings, bad) -> None:
    """The window's own fields, each checked on its own (see load_settings)."""
    disabled = gui.get("disabled_devices")
    if disabled is not None:
        if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
            bad("disabled_devices", "must be a list of device names (strings); "
                "every device starts switched on")
        else:
            settings.disabled_devices = list(dict.fromkeys(disabled))  # order kept, no repeats

    geometry = gui.get("geometry")
    if geometry is not None:
        if not isinstance(geometry, str):
            bad("geometry", f"must be a base64 string, got {_json_type(geometry)}; "
                "using the default window size")
        else:
            try:
                base64.b64decode(geometry.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                bad("geometry", "is not valid base64; using the default window size")
            else:
                settings.geometry = geometry

    close_to_tray = gui.get("close_to_tray")
    if close_to_tray is not None:
        if not isinstance(close_to_tray, bool):
            bad("close_to_tray", f"must be true or false, got {_json_type(close_to_tray)}; "
                "using false")
        else:
            settings.close_to_tray = close_to_tray


def _readable_by_others(path: Path) -> int:
    """The file's mode when group or others may read it, else 0."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0
    return mode if mode & 0o044 else 0


def _holds_passwords(data: dict[str, Any]) -> bool:
    """A pool entry with a real password ("x" and "" are the placeholders pools expect)."""
    pools = data.get("pools")
    return isinstance(pools, list) and any(
        isinstance(p, dict) and p.get("pass", p.get("password", "x")) not in ("x", "", None)
        for p in pools)


# --------------------------------------------------------------------------- save
def settings_to_json(settings: GuiSettings, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The file's JSON object: ``base`` (what the file held) with the app's keys replaced.

    ``threads`` / ``devices`` of None are removed, so the CLI uses its own defaults; so is an
    empty ``rigs``.
    """
    data: dict[str, Any] = dict(base or {})
    data["pools"] = [{"url": p.url, "user": p.user, "pass": p.password} for p in settings.pools]
    # no rigs: no key (the file of someone who never opened the Rigs tab stays as it was)
    rigs = list(settings.rigs) or None
    for key, value in (("threads", settings.threads), ("devices", settings.devices),
                       ("rigs", rigs)):
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    old_gui = data.get("gui")
    gui: dict[str, Any] = dict(old_gui) if isinstance(old_gui, dict) else {}
    gui.update({
        "version": SCHEMA_VERSION,
        "disabled_devices": list(settings.disabled_devices),
        "geometry": settings.geometry,
        "close_to_tray": bool(settings.close_to_tray),
    })
    if settings.geometry is None:
        gui.pop("geometry")
    data["gui"] = gui
    # values the app could not read stay as the file has them (see GuiSettings.unread)
    base = base or {}
    for key in settings.unread:
        top, _, sub = key.partition(".")
        if not sub:
            if top in base:
                data[top] = base[top]
            else:
                data.pop(top, None)
        elif isinstance(old_gui, dict) and top == "gui":
            if sub in old_gui:
                gui[sub] = old_gui[sub]
            else:
                gui.pop(sub, None)
    return data


def _check_savable(settings: GuiSettings) -> None:
    """Refuse to write a file the CLI (or the next start) would reject; ValueError says why."""
    for i, pool in enumerate(settings.pools):
        errors = validate_pool(pool.url, pool.user, pool.password)
        if errors:
            raise ValueError(f"pool {i + 1} ({pool.url}): " + "; ".join(errors.values()))
    if settings.threads is not None:
        lo, hi = THREADS_RANGE
        if isinstance(settings.threads, bool) or not isinstance(settings.threads, int) \
                or not lo <= settings.threads <= hi:
            raise ValueError(f"threads must be a whole number in {lo}..{hi}, got {settings.threads!r}")
    if settings.devices is not None:
        check_device_selection(tuple(k.strip() for k in settings.devices.split(",") if k.strip()))
    for rig in settings.rigs:
        if normalize_rig(rig) != rig:
            raise ValueError(f"rig {rig!r} is not in the HOST:PORT form the file keeps")


def _read_existing(path: Path) -> tuple[dict[str, Any] | None, bool]:
    """(the file's object or None, whether a file is there that is not a JSON object)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, False
    except (OSError, UnicodeDecodeError):
        return None, True
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None, True
    if not isinstance(data, dict):
        return None, True
    return data, False


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomically(target: Path, text: str, mode: int) -> None:
    """Write ``text`` to a temp file beside ``target``, fsync it, rename it over ``target``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _copy_atomically(src: Path, target: Path) -> None:
    """Copy ``src`` to ``target`` so that ``target`` is always either old or complete."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copy2(src, tmp_name)
        with open(tmp_name, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def save_settings(path: str | os.PathLike[str], settings: GuiSettings, *,
                  replace_unreadable: bool = False) -> None:
    """Write ``settings`` into the config file at ``path`` atomically.

    Keys the app does not own, and values listed in ``settings.unread``, are kept from the
    current file; the current file becomes ``<path>.bak``.  A current file that is not a
    JSON object raises :class:`UnreadableSettingsFile` unless ``replace_unreadable`` (the
    user agreed); then it is also kept as ``<path>.invalid`` (the next save's backup would
    otherwise replace it).  A file that holds pool passwords is written owner-only.  Raises
    ValueError for settings the CLI would reject and OSError (naming the path) when the
    file cannot be written; on any error the current file is untouched.
    """
    path = Path(path)
    _check_savable(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing, unreadable = _read_existing(path)
    if unreadable and not replace_unreadable:
        raise UnreadableSettingsFile(f"settings file {path} is not a JSON object; "
                                     "it is left as it is")
    data = settings_to_json(settings, existing)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    mode = 0o600   # the file holds pool passwords
    if path.exists():
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077 and _holds_passwords(data):
            mode &= 0o700
            log.warning("settings file %s holds pool passwords: made it readable by you only "
                        "(%04o)", path, mode)
        if unreadable:
            invalid = path.with_name(path.name + ".invalid")
            _copy_atomically(path, invalid)
            log.warning("settings file %s was not a JSON object; kept it as %s", path, invalid)
        _copy_atomically(path, path.with_name(path.name + ".bak"))
    _write_atomically(path, text, mode)
    _fsync_dir(path.parent)
