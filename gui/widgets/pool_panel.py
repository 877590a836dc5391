"""The pools in priority order, with a form to add / edit / remove / reorder them.

Why a form with inline messages: a pool URL typo otherwise shows up only as a connection
failure minutes later.  The form checks with the engine's own URL parser
(:func:`sgm_gui.settings.validate_pool`) and says what is wrong next to the field; nothing
is stored until the values are good.  Accepted edits are announced with ``pools_changed``
(the window saves them and hands them to the miner); ``set_pools`` never emits, so loading
settings cannot echo back as an edit.

Below the form, the share difficulty to ask the pools for (``suggest-diff`` in the config
file, ``--suggest-diff`` on the command line): pools that start every miner at a high
difficulty (public-pool: 16,384) leave a small miner without a share for minutes.  An
accepted change is announced with ``suggest_diff_changed``; ``set_suggest_diff`` never emits.

Live status (state, difficulty, last submit round trip) comes from ``Miner.pool_status()``
rows and is matched to pools by URL and user, never by row number, because the list may have
been edited since the miner started.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from sgm.api import KEYS, FieldError, PoolConfig, normalize_pool_url

from ..settings import validate_pool

log = logging.getLogger("sgm.gui.pools")

COLUMNS = ("#", "URL", "User", "State", "Difficulty", "Submit round trip")
COLUMN_TIPS = (
    "Priority: the first pool that answers is mined, the others are failovers",
    "Where the pool is (stratum+tcp:// or stratum+ssl://, host and port)",
    "The pool account, usually wallet.worker",
    "Connected, connecting or not connected; hover a row for the reason and the retry",
    "The share difficulty the pool asks for",
    "Time from sending the last share to the pool's answer",
)
COL_STATE, COL_DIFF, COL_LATENCY = 3, 4, 5
STATE_COLOURS = {"connected": "#1B7F3B", "local": "#1B7F3B", "connecting": "#A86400",
                 "disconnected": "#B3261E"}
ERROR_COLOUR = "#B3261E"
#: What each state means, for its tooltip.
STATE_WORDS = {
    "connected": "Connected: this pool sends the work being mined",
    "local": "sgm's embedded pool on this computer",
    "connecting": "Opening a session with this pool",
    "disconnected": "Not connected",
}


def _pool_key(url: str, user: str) -> tuple[str, str]:
    return url.strip(), user


class PoolTableModel(QtCore.QAbstractTableModel):
    """Pools in priority order plus the last status seen for each (by URL and user)."""

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._pools: list[PoolConfig] = []
        self._status: dict[tuple[str, str], dict[str, Any]] = {}

    # Qt model API
    def rowCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._pools)

    def columnCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: QtCore.Qt.Orientation,  # noqa: N802
                   role: int = QtCore.Qt.DisplayRole) -> Any:
        if orientation == QtCore.Qt.Horizontal and role == QtCore.Qt.DisplayRole:
            return COLUMNS[section]
        if orientation == QtCore.Qt.Horizontal and role == QtCore.Qt.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def data(self, index: QtCore.QModelIndex, role: int = QtCore.Qt.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._pools):
            return None
        pool = self._pools[index.row()]
        status = self._status.get(_pool_key(pool.url, pool.user))
        col = index.column()
        if role == QtCore.Qt.DisplayRole:
            return self._text(index.row(), pool, status, col)
        if role == QtCore.Qt.ForegroundRole and col == COL_STATE and status:
            colour = STATE_COLOURS.get(str(status.get("state")))
            return QtGui.QBrush(QtGui.QColor(colour)) if colour else None
        if role == QtCore.Qt.ToolTipRole and col == 1:
            return pool.url
        if role == QtCore.Qt.ToolTipRole and col == COL_STATE:
            return state_tooltip(status)
        if role == QtCore.Qt.TextAlignmentRole and col in (0, COL_DIFF, COL_LATENCY):
            return int(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
        return None

    @staticmethod
    def _text(row: int, pool: PoolConfig, status: dict[str, Any] | None, col: int) -> str:
        if col == 0:
            return str(row + 1)
        if col == 1:
            return pool.url
        if col == 2:
            return pool.user
        if status is None:
            return "\u2014" if col == COL_STATE else ""
        if col == COL_STATE:
            state = str(status.get("state") or "\u2014")
            return f"{state} (active)" if status.get("active") and state != "local" else state
        if col == COL_DIFF:
            return format_difficulty(status.get("difficulty"))
        if col == COL_LATENCY:
            return format_ms(status.get("last_submit_ms"))
        return ""

    # sgm API
    def pools(self) -> list[PoolConfig]:
        return list(self._pools)

    def set_pools(self, pools: list[PoolConfig]) -> None:
        self.beginResetModel()
        self._pools = list(pools)
        self.endResetModel()

    def set_status(self, rows: list[dict[str, Any]]) -> None:
        """Keep the rows by (url, user); one dataChanged over the status columns."""
        self._status = {}
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("url"), str):
                self._status[_pool_key(row["url"], str(row.get("user", "")))] = row
        if self._pools:
            self.dataChanged.emit(self.index(0, COL_STATE),
                                  self.index(len(self._pools) - 1, COL_LATENCY),
                                  [QtCore.Qt.DisplayRole, QtCore.Qt.ForegroundRole])


def state_tooltip(status: dict[str, Any] | None) -> str:
    """The state cell's tooltip: what the state means and, for a pool that cannot be
    reached, why and when it is tried again."""
    if status is None:
        return "Not mining: no state yet"
    state = str(status.get("state") or "")
    lines = [STATE_WORDS.get(state, state)]
    error = status.get("error")
    if error:
        lines.append(f"Last attempt: {str(error)[:1].upper()}{str(error)[1:]}")
    retry = status.get("retry_in_s")
    if isinstance(retry, (int, float)):
        lines.append(f"Retrying in {math.ceil(retry)} s")
    return "\n".join(lines)


def format_difficulty(value: Any) -> str:
    """Pool difficulty for a table cell ("" when unknown)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        return ""
    return f"{value:.6g}"


def format_ms(value: Any) -> str:
    """A round trip in ms for a table cell ("" when unknown)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        return ""
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


class PoolPanel(QtWidgets.QWidget):
    """The pool table and its form (see the module docstring)."""

    pools_changed = QtCore.Signal(list)   # list[PoolConfig] after an accepted user edit
    suggest_diff_changed = QtCore.Signal(object)   # float | None (the pool decides)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = PoolTableModel(self)
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(QtCore.Qt.ElideMiddle)   # host and port stay readable
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.Stretch)
        header.setMinimumSectionSize(40)

        self.local_label = QtWidgets.QLabel()
        self.local_label.setWordWrap(True)

        self.url_edit = QtWidgets.QLineEdit()
        self.url_edit.setPlaceholderText("stratum+tcp://pool.example.com:3333")
        self.user_edit = QtWidgets.QLineEdit()
        self.user_edit.setPlaceholderText("wallet.worker")
        self.password_edit = QtWidgets.QLineEdit()
        self.password_edit.setEchoMode(QtWidgets.QLineEdit.Password)
        self.password_edit.setPlaceholderText("x")
        self.errors: dict[str, QtWidgets.QLabel] = {}
        form = QtWidgets.QGridLayout()
        form.setColumnStretch(1, 1)
        for row, (name, label, edit) in enumerate((
                ("url", "Pool &URL", self.url_edit), ("user", "Us&er", self.user_edit),
                ("password", "Pass&word", self.password_edit))):
            caption = QtWidgets.QLabel(label)
            caption.setBuddy(edit)
            error = QtWidgets.QLabel()
            error.setObjectName(f"{name}_error")
            error.setWordWrap(True)
            error.setStyleSheet(f"color: {ERROR_COLOUR};")
            error.setVisible(False)
            # the room of one line is kept while no error shows: the form does not jump
            # when one appears (a message longer than the line still wraps)
            policy = error.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            error.setSizePolicy(policy)
            error.setMinimumHeight(error.fontMetrics().lineSpacing())
            error.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)
            error.setAccessibleName(f"{name} error")
            self.errors[name] = error
            form.addWidget(caption, 2 * row, 0)
            form.addWidget(edit, 2 * row, 1)
            form.addWidget(error, 2 * row + 1, 1)
            edit.textEdited.connect(lambda _text, n=name: self._clear_error(n))
            edit.returnPressed.connect(self._on_return)

        # mnemonics unique in the whole window (menus, tabs and the other tabs' buttons)
        self.add_button = QtWidgets.QPushButton("&Add")
        self.save_button = QtWidgets.QPushButton("Save ed&it")
        self.remove_button = QtWidgets.QPushButton("Remo&ve")
        self.up_button = QtWidgets.QPushButton("Move up")
        self.down_button = QtWidgets.QPushButton("Move down")
        self.up_button.setToolTip("Give the selected pool a higher priority (Alt+Up)")
        self.down_button.setToolTip("Give the selected pool a lower priority (Alt+Down)")
        for keys, step in (("Alt+Up", -1), ("Alt+Down", +1)):
            shortcut = QtGui.QShortcut(QtGui.QKeySequence(keys), self)
            shortcut.setContext(QtCore.Qt.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda s=step: self.move_selected(s))
        self.add_button.setToolTip("Add the pool in the form at the lowest priority")
        self.save_button.setToolTip("Replace the selected pool with the form's values")
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.add_button, self.save_button, self.remove_button, self.up_button,
                  self.down_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.add_button.clicked.connect(self.add_from_form)
        self.save_button.clicked.connect(self.save_edit)
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(+1))

        # the share difficulty asked of the pools: one value for all of them, as sgm's
        # --suggest-diff; applied (and saved) only when Apply or Enter accepts it
        self._suggest_diff: float | None = None
        self.suggest_diff_edit = QtWidgets.QLineEdit()
        self.suggest_diff_edit.setPlaceholderText("the pool decides")
        self.suggest_diff_edit.setToolTip(
            "Share difficulty sgm asks every pool for when it connects "
            "(mining.suggest_difficulty); fractions allowed, e.g. 0.5.\nA pool that starts "
            "miners at a high difficulty may leave a small one without a share for "
            "minutes.\nEmpty: the pool decides.  The config file's \"suggest-diff\".")
        self.suggest_diff_button = QtWidgets.QPushButton("Appl&y")
        self.suggest_diff_button.setToolTip("Ask the pools for this share difficulty "
                                            "(mining restarts to send it)")
        suggest_caption = QtWidgets.QLabel("Share difficulty to as&k for")
        suggest_caption.setBuddy(self.suggest_diff_edit)
        suggest_error = QtWidgets.QLabel()
        suggest_error.setObjectName("suggest_diff_error")
        suggest_error.setWordWrap(True)
        suggest_error.setStyleSheet(f"color: {ERROR_COLOUR};")
        suggest_error.setAccessibleName("suggest_diff error")
        suggest_error.setVisible(False)
        # like the form's messages: its line is kept while hidden, so nothing jumps
        policy = suggest_error.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        suggest_error.setSizePolicy(policy)
        suggest_error.setMinimumHeight(suggest_error.fontMetrics().lineSpacing())
        self.errors["suggest_diff"] = suggest_error
        suggest_row = QtWidgets.QHBoxLayout()
        suggest_row.addWidget(suggest_caption)
        suggest_row.addWidget(self.suggest_diff_edit, 1)
        suggest_row.addWidget(self.suggest_diff_button)
        self.suggest_diff_edit.textEdited.connect(lambda _text: self._clear_error("suggest_diff"))
        self.suggest_diff_edit.returnPressed.connect(self.apply_suggest_diff)
        self.suggest_diff_button.clicked.connect(self.apply_suggest_diff)

        hint = QtWidgets.QLabel("Pools are tried in this order: the first that answers is "
                                "mined, the others are failovers.")
        hint.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.local_label)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addLayout(suggest_row)
        layout.addWidget(suggest_error)

        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self._update_buttons()
        self._update_local_label([])

    # ------------------------------------------------------------------ public API
    def set_pools(self, pools: list[PoolConfig]) -> None:
        """Show ``pools`` (from the settings); does not emit pools_changed."""
        self.model.set_pools(list(pools))
        self._clear_errors()
        self._update_buttons()
        self._update_local_label(None)

    def pools(self) -> list[PoolConfig]:
        return self.model.pools()

    def set_status(self, status: list[dict]) -> None:
        """Show Miner.pool_status() rows: state, difficulty and last submit per pool."""
        self.model.set_status(status)
        self._update_local_label(status)

    def set_suggest_diff(self, value: float | None) -> None:
        """Show the share difficulty asked of the pools (None: the pool decides); does not
        emit suggest_diff_changed."""
        self._suggest_diff = value
        self.suggest_diff_edit.setText("" if value is None else f"{value:g}")
        self._clear_error("suggest_diff")

    def suggest_diff(self) -> float | None:
        """The share difficulty last accepted (None: the pool decides)."""
        return self._suggest_diff

    def apply_suggest_diff(self) -> bool:
        """Accept the field's difficulty (empty: the pool decides), checked as the config
        file's "suggest-diff" is; emits suggest_diff_changed when it changed.  False (with
        a message under the field) when refused."""
        raw = self.suggest_diff_edit.text().strip()
        value: float | None = None
        if raw:
            try:
                value = KEYS["suggest-diff"].parse(float(raw))
            except (ValueError, FieldError):
                self._show_error("suggest_diff", f"The share difficulty must be a positive "
                                 f"number such as 0.5 or 16384, got {raw!r}; leave it empty "
                                 "to let the pool decide")
                self.suggest_diff_edit.setFocus()
                return False
        self._clear_error("suggest_diff")
        if value == self._suggest_diff:
            return True
        self._suggest_diff = value
        self.suggest_diff_changed.emit(value)
        return True

    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def select_row(self, row: int | None) -> None:
        if row is None or not 0 <= row < self.model.rowCount():
            self.table.clearSelection()
        else:
            self.table.selectRow(row)

    def set_form(self, url: str, user: str, password: str = "") -> None:
        """Fill the form (as selecting a row does)."""
        self.url_edit.setText(url)
        self.user_edit.setText(user)
        self.password_edit.setText(password)
        self._clear_errors()

    def error_text(self, name: str) -> str:
        """The message shown next to field ``name`` ("" when none is shown)."""
        label = self.errors[name]
        return label.text() if not label.isHidden() else ""

    # ------------------------------------------------------------------ actions
    def add_from_form(self) -> bool:
        """Append the form's pool (lowest priority); False (with messages) when refused."""
        pool = self._pool_from_form(exclude_row=None)
        if pool is None:
            return False
        pools = self.pools() + [pool]
        self._apply(pools, select=len(pools) - 1)
        return True

    def save_edit(self) -> bool:
        """Replace the selected pool with the form's values; False when refused."""
        row = self.selected_row()
        if row is None:
            self._show_error("url", "Select the pool to change in the list first")
            return False
        pool = self._pool_from_form(exclude_row=row)
        if pool is None:
            return False
        pools = self.pools()
        if pools[row] == pool:
            return True
        pools[row] = pool
        self._apply(pools, select=row)
        return True

    def remove_selected(self) -> bool:
        row = self.selected_row()
        if row is None:
            return False
        pools = self.pools()
        del pools[row]
        self._apply(pools, select=min(row, len(pools) - 1) if pools else None)
        return True

    def move_selected(self, step: int) -> bool:
        """Move the selected pool ``step`` places (-1 up = higher priority)."""
        row = self.selected_row()
        if row is None:
            return False
        target = row + step
        pools = self.pools()
        if not 0 <= target < len(pools):
            return False
        pools[row], pools[target] = pools[target], pools[row]
        self._apply(pools, select=target)
        return True

    # ------------------------------------------------------------------ internals
    def _pool_from_form(self, exclude_row: int | None) -> PoolConfig | None:
        url = self.url_edit.text().strip()
        user = self.user_edit.text().strip()
        password = self.password_edit.text() or "x"     # blank: the CLI's default
        errors = validate_pool(url, user, password)
        if "url" not in errors:
            # "pool.example.com:3333" is kept as the engine mines it, with its scheme
            url = normalize_pool_url(url)
        if "url" not in errors and "user" not in errors:
            key = _pool_key(url, user)
            for i, other in enumerate(self.pools()):
                if i != exclude_row and _pool_key(other.url, other.user) == key:
                    errors["url"] = (f"This URL with this user is already pool {i + 1} "
                                     "in the list")
        self._clear_errors()
        if errors:
            for name, message in errors.items():
                self._show_error(name, message)
            first = {"url": self.url_edit, "user": self.user_edit,
                     "password": self.password_edit}[next(iter(errors))]
            first.setFocus()
            return None
        return PoolConfig(url, user, password)

    def _apply(self, pools: list[PoolConfig], select: int | None) -> None:
        self._clear_errors()      # an error about the form is stale once the list changed
        self.model.set_pools(pools)
        self.select_row(select)
        self._update_buttons()
        self._update_local_label(None)
        self.pools_changed.emit(list(pools))

    def _show_error(self, name: str, message: str) -> None:
        label = self.errors[name]
        label.setText(message)
        label.setVisible(True)

    def _clear_error(self, name: str) -> None:
        self.errors[name].clear()
        self.errors[name].setVisible(False)

    def _clear_errors(self) -> None:
        for name in self.errors:
            self._clear_error(name)

    def _on_return(self) -> None:
        if self.selected_row() is None:
            self.add_from_form()
        else:
            self.save_edit()

    def _on_selection(self, *_args) -> None:
        row = self.selected_row()
        if row is not None:
            pool = self.pools()[row]
            self.set_form(pool.url, pool.user, pool.password)
        self._update_buttons()

    def _update_buttons(self) -> None:
        row = self.selected_row()
        n = self.model.rowCount()
        self.save_button.setEnabled(row is not None)
        self.remove_button.setEnabled(row is not None)
        self.up_button.setEnabled(row is not None and row > 0)
        self.down_button.setEnabled(row is not None and row < n - 1)

    def _update_local_label(self, status: list[dict] | None) -> None:
        """With no pool configured, say that the embedded pool is mined (and how it is)."""
        if self.model.rowCount():
            self.local_label.setVisible(False)
            return
        text = "No pool configured: sgm mines its embedded local pool"
        local = next((r for r in status or [] if isinstance(r, dict)
                      and r.get("state") == "local"), None)
        if local is not None:
            parts = [str(local.get("url", ""))]
            if local.get("difficulty") is not None:
                parts.append(f"difficulty {format_difficulty(local['difficulty'])}")
            if local.get("last_submit_ms") is not None:
                parts.append(f"submit round trip {format_ms(local['last_submit_ms'])}")
            text += " " + ", ".join(p for p in parts if p)
        self.local_label.setText(text)
        self.local_label.setVisible(True)
