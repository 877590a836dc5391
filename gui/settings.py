"""The desktop app's settings, kept in the same JSON file the CLI reads with ``sgm -c FILE``.

Why one file: a user who set pools up in the window can mine the same pools headless with
``sgm -c ~/.config/sgm/sgm.json``, and the reverse.  So the app writes exactly the CLI's shapes
(``pools`` as ``[{"url", "user", "pass"}]``, ``threads`` an int, ``devices`` the ``--devices``
text, ``suggest-diff`` a number, ``rigs`` the ``"HOST:PORT"`` list ``sgm farm -c``
watches) and puts what only the window needs under the ``"gui"`` key,
which the CLI accepts and ignores.  Keys the app does not own (``difficulty``, ``jobs``, ...)
survive every save.

The file is read by the engine's schema (:func:`sgm.api.read_config`, the same one
``sgm -c`` uses, in its lenient mode), so every key means the same to both; the app's
MinerConfig is then made the CLI's way (``sgm_gui.app.build_config``).

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

from sgm.api import GUI_KEYS, KEYS, FieldError, PoolConfig, check_pool, json_type, parse_rig, read_config

log = logging.getLogger("sgm.gui.settings")

#: Layout of the "gui" object; a newer file's extra keys are kept, never dropped.
SCHEMA_VERSION = 1
#: Keys of the CLI's config file that the app writes (everything else is kept as found).
OWNED_KEYS = ("pools", "threads", "devices", "suggest-diff", "rigs")
#: Keys inside "gui" that the app writes.
OWNED_GUI_KEYS = tuple(GUI_KEYS)


@dataclass
class GuiSettings:
    """What the window remembers between runs (see the module docstring for the file)."""

    pools: list[PoolConfig] = field(default_factory=list)   # [] = the embedded local pool
    threads: int | None = None                               # CPU threads (None: one per core)
    devices: str | None = None                               # the CLI's --devices text
    suggest_diff: float | None = None                        # share difficulty asked of pools
    disabled_devices: list[str] = field(default_factory=list)  # switched off in the device table
    geometry: str | None = None                              # base64 of saveGeometry()
    close_to_tray: bool = False
    #: the Rigs tab's miners, "HOST:PORT" as ``sgm farm -c`` reads them
    rigs: list[str] = field(default_factory=list)
    #: keys whose value in the file could not be read ("threads", "pools", "gui",
    #: "gui.geometry", ...): saves keep the file's value until the user changes the setting
    #: (then the window discards the key here)
    unread: set[str] = field(default_factory=set, compare=False)
    #: every key of the file the app reads, as sgm.config.read_config made it (the miner's
    #: keys the window does not edit -- difficulty, impl, cert ... -- reach the miner from here)
    file_values: dict[str, Any] = field(default_factory=dict, compare=False)


class UnreadableSettingsFile(ValueError):
    """The settings file is there but is not a JSON object: replacing it needs the user's
    consent (``save_settings(..., replace_unreadable=True)``)."""


def default_config_path() -> Path:
    """``<user config dir>/sgm/sgm.json`` (e.g. ``~/.config/sgm/sgm.json`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("sgm")) / "sgm.json"


# --------------------------------------------------------------------------- validation
def validate_pool(url: str, user: str, password: str) -> dict[str, str]:
    """``{field: message}`` for "url" / "user" / "password"; ``{}`` when the pool is good.

    The schema's own check (:func:`sgm.api.check_pool`: the URL through the engine's
    parser), so the form refuses exactly what mining would refuse later, with the same
    words; on top of it the form asks for a user, which a file may leave out.
    """
    errors: dict[str, str] = {}
    if not isinstance(url, str) or not url.strip():
        errors["url"] = "Enter the pool URL, e.g. stratum+tcp://pool.example.com:3333"
    if not isinstance(user, str) or not user.strip():
        errors["user"] = "Enter the pool user (usually wallet.worker); it cannot be empty"
    if not isinstance(password, str):
        errors["password"] = "The password must be text"
    checked = check_pool(url if isinstance(url, str) else "",
                         user if isinstance(user, str) else "",
                         password if isinstance(password, str) else "")
    for name, message in checked.items():
        errors.setdefault(name, message[:1].upper() + message[1:])
    return errors


def normalize_rig(text: str) -> str:
    """``text`` as the config file keeps a rig: ``HOST:PORT`` (port 4028 when left out).
    Raises ValueError with the farm parser's own words (the one ``sgm farm`` uses)."""
    if not isinstance(text, str):
        raise ValueError(f"a rig must be a \"HOST:PORT\" string, got {json_type(text)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"{text!r}: a rig address must not contain control characters")
    return str(parse_rig(text))


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
        warnings.append(f"Settings file {path} must hold a JSON object, got {json_type(data)}; "
                        "using the defaults, the file is left as it is")
        return settings, warnings

    # the schema's lenient reading: a bad value costs only its own key (listed in
    # settings.unread, so saves keep it in the file as it is)
    where = f"Settings file {path}"
    read = read_config(data, where, strict=False, reader="app")
    warnings.extend(problem.text(where) for problem in read.problems)
    settings.unread = set(read.unread)
    values = settings.file_values = read.values
    settings.pools = [entry.pool_config() for entry in values.get("pools", [])]
    settings.threads = values.get("threads")
    if "devices" in values:
        settings.devices = ",".join(values["devices"])
    settings.suggest_diff = values.get("suggest-diff")
    gui = values.get("gui", {})
    settings.disabled_devices = list(gui.get("disabled_devices", []))
    settings.geometry = gui.get("geometry")
    settings.close_to_tray = bool(gui.get("close_to_tray", False))
    # rigs: the schema checks the list; each rig stands alone, and one that cannot be read
    # keeps the whole list as the file has it (GuiSettings.unread) until the user edits rigs
    for i, entry in enumerate(values.get("rigs", []) or []):
        try:
            rig = normalize_rig(entry)
        except ValueError as exc:
            warnings.append(f"{where}: rigs[{i}]: {exc}; rig skipped")
            settings.unread.add("rigs")
            continue
        if rig not in settings.rigs:
            settings.rigs.append(rig)
    exposed = _readable_by_others(path)
    if exposed and _holds_passwords(data):
        warnings.append(f"Settings file {path} holds pool passwords and other users can read "
                        f"it (mode {exposed:04o}); sgm makes it readable by you only (0600) at "
                        f"its next save, or run: chmod 600 {path}")
    for message in warnings:
        log.warning("%s", message)
    return settings, warnings


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

    ``threads`` / ``devices`` / ``suggest-diff`` of None are removed, so the CLI uses its
    own defaults; so is an empty ``rigs``.
    """
    data: dict[str, Any] = dict(base or {})
    data["pools"] = [{"url": p.url, "user": p.user, "pass": p.password} for p in settings.pools]
    # no rigs: no key (the file of someone who never opened the Rigs tab stays as it was)
    rigs = list(settings.rigs) or None
    for key, value in (("threads", settings.threads), ("devices", settings.devices),
                       ("suggest-diff", settings.suggest_diff), ("rigs", rigs)):
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
    """Refuse to write a file the CLI (or the next start) would reject: every value the
    app writes goes through the schema's own check; ValueError says why."""
    for i, pool in enumerate(settings.pools):
        errors = check_pool(pool.url, pool.user, pool.password)
        if errors:
            raise ValueError(f"pool {i + 1} ({pool.url}): " + "; ".join(errors.values()))
    for key, value in (("threads", settings.threads), ("devices", settings.devices),
                       ("suggest-diff", settings.suggest_diff)):
        if value is None:
            continue
        try:
            KEYS[key].parse(value)
        except FieldError as exc:
            raise ValueError(f"{key} {exc}") from None
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
