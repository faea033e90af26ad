"""Paints the newest annotated frame, aspect kept, and turns mouse drags into regions.

The frame arrives already scaled to this widget's size (the bridge does it on the pipeline
thread), so painting is a blit. Widget coordinates map to frame coordinates through the
same letterboxed rectangle the frame is drawn in, so a region drawn on screen lands on the
same pixels in the frame whatever the window size. The first paint of each frame reports
``on_painted`` (latency is measured there: capture -> on screen). While a recording runs a red
dot and "REC" are painted in the top-left corner, over the video or the placeholder alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from waste_vision.app.bridge import Delivery, fit_size

MIN_DRAG_PX = 8  # a smaller drag is a click, not a region
REC_RED = QColor(217, 48, 37)


def letterbox(
    frame_wh: tuple[int, int], widget_wh: tuple[float, float], dpr: float = 1.0
) -> QRectF:
    """Where a frame is drawn in a widget (logical pixels): aspect kept, centred."""
    dw, dh = fit_size(
        frame_wh, (max(1, round(widget_wh[0] * dpr)), max(1, round(widget_wh[1] * dpr)))
    )
    w, h = dw / dpr, dh / dpr
    return QRectF(round((widget_wh[0] - w) / 2), round((widget_wh[1] - h) / 2), w, h)


def widget_to_frame(
    point: QPointF, target: QRectF, frame_wh: tuple[int, int]
) -> tuple[float, float]:
    """A widget point as frame pixel coordinates, clamped to the frame."""
    fw, fh = frame_wh
    x = (point.x() - target.x()) * fw / target.width()
    y = (point.y() - target.y()) * fh / target.height()
    return min(max(x, 0.0), float(fw)), min(max(y, 0.0), float(fh))


class VideoWidget(QWidget):
    regionDrawn = Signal(tuple)  # (x, y, w, h) in frame pixels
    regionRemoveRequested = Signal(float, float)  # a point in frame pixels
    regionTrackToggled = Signal(float, float)  # frame pixels: a double-click there

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 135)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Drag to add a region; right-click a region to remove it")
        self.placeholder = "No video"
        self.on_painted: Callable[[Delivery, float], None] | None = None
        self.on_resized: Callable[[tuple[int, int]], None] | None = None
        self.delivery: Delivery | None = None
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # keeps the QImage's buffer alive
        self._fresh = False  # the current frame has not been painted yet
        self._drag: tuple[QPointF, QPointF] | None = None
        self.recording = False  # paint the REC sign

    # -- frames -----------------------------------------------------------------------------

    def set_delivery(self, delivery: Delivery) -> None:
        pixels = np.ascontiguousarray(delivery.display)
        h, w = pixels.shape[:2]
        self._image = QImage(pixels.data, w, h, pixels.strides[0], QImage.Format.Format_RGB888)
        self._pixels, self.delivery, self._fresh = pixels, delivery, True
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self._image = self._pixels = self.delivery = None
        if placeholder is not None:
            self.placeholder = placeholder
        self.update()

    @property
    def frame_size(self) -> tuple[int, int] | None:
        if self.delivery is None:
            return None
        h, w = self.delivery.annotated.shape[:2]
        return w, h

    def target_rect(self) -> QRectF | None:
        size = self.frame_size
        if size is None:
            return None
        return letterbox(size, (self.width(), self.height()), self.devicePixelRatioF())

    def display_size(self) -> tuple[int, int]:
        """The widget in device pixels: what the bridge scales frames to."""
        dpr = self.devicePixelRatioF()
        return max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr))

    # -- painting ---------------------------------------------------------------------------

    def set_recording(self, on: bool) -> None:
        if on != self.recording:
            self.recording = on
            self.update()

    def _paint_rec_sign(self, painter: QPainter) -> None:
        """A red dot and "REC" on a dark plate, top left, sized to the widget."""
        size = max(14, min(self.width(), self.height()) // 18)
        font = QFont(self.font())
        font.setBold(True)
        font.setPixelSize(size)
        painter.setFont(font)
        text_w = painter.fontMetrics().horizontalAdvance("REC")
        pad = size // 2
        plate = QRectF(pad, pad, pad + size + pad // 2 + text_w + pad, size + pad)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(plate, pad / 2, pad / 2)
        painter.setBrush(REC_RED)
        painter.drawEllipse(
            QRectF(plate.x() + pad / 2, plate.y() + pad / 2 + size * 0.15, size * 0.7, size * 0.7)
        )
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(
            QRectF(plate.x() + pad / 2 + size, plate.y(), text_w + pad, plate.height()),
            Qt.AlignmentFlag.AlignVCenter,
            "REC",
        )

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(16, 16, 16))
        target = self.target_rect()
        if self._image is None or target is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            if self.recording:
                self._paint_rec_sign(painter)
            painter.end()
            return
        dpr = self.devicePixelRatioF()
        if (self._image.width(), self._image.height()) == (
            round(target.width() * dpr),
            round(target.height() * dpr),
        ):
            self._image.setDevicePixelRatio(dpr)
            painter.drawImage(target.topLeft(), self._image)  # a plain blit
        else:  # the widget was resized since the frame was scaled
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, self._image)
        if self._drag is not None:
            painter.setPen(QPen(QColor(255, 230, 0), 2, Qt.PenStyle.DashLine))
            painter.drawRect(QRectF(*self._drag).normalized())
        if self.recording:
            self._paint_rec_sign(painter)
        painter.end()
        if self._fresh and self.delivery is not None:
            self._fresh = False
            if self.on_painted is not None:
                self.on_painted(self.delivery, time.monotonic())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.on_resized is not None:
            self.on_resized(self.display_size())

    # -- regions ----------------------------------------------------------------------------

    def _on_frame(self, pos: QPointF) -> tuple[float, float] | None:
        """``pos`` in frame pixels when it lies on the frame drawn; else None."""
        size = self.frame_size
        target = self.target_rect()
        if size is None or target is None or not target.contains(pos):
            return None
        return widget_to_frame(pos, target, size)

    def mousePressEvent(self, event) -> None:
        pos = event.position()
        at = self._on_frame(pos)
        if at is None:
            return super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag = (pos, pos)
        elif event.button() == Qt.MouseButton.RightButton:
            self.regionRemoveRequested.emit(*at)
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        """Double-click a region: it starts or stops following its item."""
        at = self._on_frame(event.position())
        if at is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mouseDoubleClickEvent(event)
        self._drag = None
        self.regionTrackToggled.emit(*at)
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        if self._drag is not None:
            self._drag = (self._drag[0], event.position())
            self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mouseReleaseEvent(event)
        start, end = self._drag[0], event.position()
        self._drag = None
        self.update()
        target, size = self.target_rect(), self.frame_size
        if (
            target is None
            or size is None
            or abs(end.x() - start.x()) < MIN_DRAG_PX
            or abs(end.y() - start.y()) < MIN_DRAG_PX
        ):
            return
        x0, y0 = widget_to_frame(start, target, size)
        x1, y1 = widget_to_frame(end, target, size)
        x, y = round(min(x0, x1)), round(min(y0, y1))
        w, h = round(max(x0, x1)) - x, round(max(y0, y1)) - y
        if w > 0 and h > 0:
            self.regionDrawn.emit((x, y, w, h))

    def cancel_drag(self) -> None:
        self._drag = None
        self.update()
