"""sgm's application icon, drawn with QPainter at any size (no binary asset in the repo).

The window, the tray and the installer's ``.desktop`` entry all use this one drawing:
:func:`make_icon` for the running app, :func:`render_icon_png` for the packaging step,
which needs a PNG file on disk.  Drawing it in code keeps the repository free of binary
files and lets the tray get a crisp pixmap at whatever size the desktop asks for.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QIcon,
    QImage,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
)

log = logging.getLogger(__name__)

#: Sizes pre-rendered into the QIcon (desktops pick the nearest).
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)

_TOP = QColor("#f7a400")      # warm amber: the colour people associate with bitcoin mining
_BOTTOM = QColor("#c25b00")
_INK = QColor("#1c1c1c")
_LIGHT = QColor("#fff7e6")


def _draw(painter: QPainter, size: int) -> None:
    """A rounded amber tile with a pick-axe striking a dark block marked '#': reads as
    'hash miner' at 256 px and still as an amber square with a dark mark at 16 px."""
    s = float(size)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    tile = QRectF(s * 0.04, s * 0.04, s * 0.92, s * 0.92)
    grad = QLinearGradient(tile.topLeft(), tile.bottomLeft())
    grad.setColorAt(0.0, _TOP)
    grad.setColorAt(1.0, _BOTTOM)
    painter.setPen(QPen(_INK, max(1.0, s * 0.03)))
    painter.setBrush(grad)
    painter.drawRoundedRect(tile, s * 0.2, s * 0.2)

    # the block: a dark rounded square in the lower left, with a light hash mark
    block = QRectF(s * 0.16, s * 0.50, s * 0.40, s * 0.34)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(_INK)
    painter.drawRoundedRect(block, s * 0.05, s * 0.05)
    if size >= 32:
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(8, int(s * 0.24)))
        painter.setFont(font)
        painter.setPen(_LIGHT)
        painter.drawText(block, Qt.AlignmentFlag.AlignCenter, "#")

    # the pick-axe: a handle from the lower right up to a curved head over the block
    handle = QPen(_LIGHT if size >= 32 else _INK, max(1.5, s * 0.07))
    handle.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(handle)
    painter.drawLine(QPointF(s * 0.82, s * 0.82), QPointF(s * 0.52, s * 0.30))
    head = QPainterPath(QPointF(s * 0.28, s * 0.36))
    head.quadTo(QPointF(s * 0.50, s * 0.14), QPointF(s * 0.80, s * 0.22))
    pen = QPen(_INK, max(1.5, s * 0.09))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawPath(head)


def render_icon_image(size: int = 256) -> QImage:
    """The icon as a transparent ARGB image of ``size`` x ``size`` pixels (no display needed:
    QImage painting works without a QGuiApplication)."""
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
        raise ValueError(f"icon size must be an int in 8..4096, got {size!r}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    try:
        _draw(painter, size)
    finally:
        painter.end()
    return image


def render_icon_png(path: str, size: int = 256) -> None:
    """Write the icon as a PNG file (the installer's .desktop icon); raises OSError when
    the file cannot be written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if QGuiApplication.instance() is None:
        # font rendering (the '#' mark) needs a Gui application; a headless one suffices
        import os

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _keep_alive.append(QGuiApplication([]))
    image = render_icon_image(size)
    if not image.save(str(target), "PNG"):
        raise OSError(f"cannot write icon PNG to {target}")
    log.debug("icon written to %s (%d px)", target, size)


#: a QGuiApplication render_icon_png made for itself (kept so Qt does not tear it down early)
_keep_alive: list[QGuiApplication] = []


def make_icon() -> QIcon:
    """The app icon with pixmaps for the usual sizes (needs a QGuiApplication)."""
    icon = QIcon()
    for size in ICON_SIZES:
        icon.addPixmap(QPixmap.fromImage(render_icon_image(size)))
    return icon
