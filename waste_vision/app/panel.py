"""The side panel: the verdict in large type, both stages as bars, thresholds, the tally, rates.

It only shows what it is given (``show_result``, ``show_tally``, ``show_rates``); the window
decides what and when. Bars are painted by hand: one small widget per class, cheaper to
repaint 30 times a second than styled progress bars.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from waste_vision.engine.annotators import colour_for, text_colour_on
from waste_vision.model.cascade import UNCERTAIN, CascadeResult

PANEL_WIDTH = 340
KIOSK_PANEL_WIDTH = 520


def _qcolour(rgb: tuple[int, int, int]) -> QColor:
    return QColor(*rgb)


class ProbabilityBar(QWidget):
    """One class: its probability as a filled bar in the class colour, the number on it."""

    def __init__(self, label: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = label
        self.value: float | None = None
        self.marker: float | None = None  # a threshold drawn as a tick
        self.highlight = False
        self.setToolTip(f"probability of {label}")

    def sizeHint(self) -> QSize:
        return QSize(200, self.fontMetrics().height() + 8)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def set_value(self, value: float | None, highlight: bool = False) -> None:
        if value != self.value or highlight != self.highlight:
            self.value, self.highlight = value, highlight
            self.update()

    def set_marker(self, marker: float | None) -> None:
        if marker != self.marker:
            self.marker = marker
            self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        r = QRectF(self.rect()).adjusted(0, 1, -1, -1)
        p.fillRect(r, QColor(48, 48, 52))
        colour = _qcolour(colour_for(self.label))
        if self.value is not None:
            p.fillRect(
                QRectF(r.x(), r.y(), r.width() * max(0.0, min(self.value, 1.0)), r.height()),
                colour if self.highlight else colour.darker(160),
            )
        if self.marker is not None:
            x = r.x() + r.width() * self.marker
            p.fillRect(QRectF(x - 1, r.y(), 2, r.height()), QColor(255, 255, 255))
        font = p.font()
        font.setBold(self.highlight)
        p.setFont(font)
        # text over the filled part takes the fill's contrast colour, over the empty part
        # white: each character stays readable wherever the bar ends (drawn twice, clipped)
        filled = r.width() * max(0.0, min(self.value or 0.0, 1.0))
        fill_colour = colour if self.highlight else colour.darker(160)
        on_fill_pen = _qcolour(
            text_colour_on((fill_colour.red(), fill_colour.green(), fill_colour.blue()))
        )
        text = "—" if self.value is None else f"{self.value:.2f}"
        inner = r.adjusted(6, 0, -6, 0)
        for clip, pen in (
            (QRectF(r.x(), r.y(), filled, r.height()), on_fill_pen),
            (QRectF(r.x() + filled, r.y(), r.width() - filled, r.height()), QColor(250, 250, 250)),
        ):
            if clip.width() <= 0:
                continue
            p.setClipRect(clip)
            p.setPen(pen)
            p.drawText(
                inner, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.label
            )
            p.drawText(inner, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, text)
        p.end()


class ThresholdSlider(QWidget):
    """A slider for a threshold in (0, 1), in steps of 0.001 (keys move it by 0.01)."""

    valueChanged = Signal(float)

    def __init__(self, title: str, tooltip: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, 999)
        self.slider.setSingleStep(10)
        self.slider.setPageStep(50)
        self.slider.setToolTip(tooltip)
        self.title = QLabel(title)
        self.number = QLabel()
        self.number.setMinimumWidth(44)
        self.number.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setVerticalSpacing(0)
        layout.addWidget(self.title, 0, 0)
        layout.addWidget(self.number, 0, 1)
        layout.addWidget(self.slider, 1, 0, 1, 2)
        self.slider.valueChanged.connect(self._changed)

    def value(self) -> float:
        return self.slider.value() / 1000.0

    def set_value(self, value: float, emit: bool = True) -> None:
        """Move the slider; ``emit=False`` only shows ``value`` (e.g. the model's own)."""
        self.slider.blockSignals(not emit)
        try:
            self.slider.setValue(round(value * 1000))
        finally:
            self.slider.blockSignals(False)
        self.number.setText(f"{value:.3f}")

    def step(self, hundredths: int) -> None:
        self.slider.setValue(self.slider.value() + 10 * hundredths)

    def _changed(self, raw: int) -> None:
        self.number.setText(f"{raw / 1000:.3f}")
        self.valueChanged.emit(raw / 1000.0)


class Panel(QWidget):
    def __init__(
        self, stage1_labels: list[str], stage2_labels: list[str], parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setObjectName("panel")
        # called with the new width (the scroll area around follows)
        self.on_width: Callable[[int], None] | None = None
        self.setFixedWidth(PANEL_WIDTH)
        self.stage1_labels, self.stage2_labels = list(stage1_labels), list(stage2_labels)
        self._base_points = self.font().pointSize()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(8)

        self.verdict = QLabel("—")
        self.verdict.setObjectName("verdict")
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict.setMinimumHeight(64)
        self.detail = QLabel("waiting for video")
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setWordWrap(True)
        self.detail.setFixedHeight(2 * self.detail.fontMetrics().lineSpacing() + 6)
        outer.addWidget(self.verdict)
        outer.addWidget(self.detail)

        self.stage1_box, self.stage1_bars = _bar_group(
            "Stage 1: organic or recyclable", self.stage1_labels
        )
        outer.addWidget(self.stage1_box)
        self.stage2_box, self.stage2_bars = _bar_group("Stage 2: material", self.stage2_labels)
        outer.addWidget(self.stage2_box)

        self.thresholds_box = QGroupBox("Thresholds")
        th = QVBoxLayout(self.thresholds_box)
        th.setSpacing(4)
        self.stage1_slider = ThresholdSlider(
            "Recyclable if stage 1 ≥",
            "stage 1 says recyclable at or above this probability "
            "(the model's calibrated value is the default)  [ and ] change it",
        )
        self.uncertain_slider = ThresholdSlider(
            "Uncertain below",
            "when the label's weaker decision (stage 1, or the material) "
            "has a probability below this, it shows as 'uncertain'  - and = change it",
        )
        th.addWidget(self.stage1_slider)
        th.addWidget(self.uncertain_slider)
        outer.addWidget(self.thresholds_box)

        self.tally_box = QGroupBox("Items seen this session")
        tally = QVBoxLayout(self.tally_box)
        # this session / today / this week: app/tally_controls.py fills and follows it
        self.tally_period = QComboBox()
        self.tally_period.setObjectName("tallyPeriod")
        self.tally_period.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        choose = QHBoxLayout()
        choose.addWidget(self.tally_period)
        choose.addStretch(1)
        tally.addLayout(choose)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        self.tally_counts: dict[str, QLabel] = {}
        classes = [
            label for label in self.stage1_labels if label != "recyclable"
        ] + self.stage2_labels
        self.tally_grid = grid
        for name in classes:
            self._add_tally_row(name)
        tally.addLayout(grid)
        bottom = QHBoxLayout()
        self.tally_total = QLabel("total 0")
        self.tally_total.setObjectName("tallyTotal")
        bottom.addWidget(self.tally_total)
        bottom.addStretch(1)
        self.reset_button = QToolButton()
        self.export_button = QToolButton()
        for button in (self.reset_button, self.export_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            bottom.addWidget(button)
        tally.addLayout(bottom)
        outer.addWidget(self.tally_box)

        outer.addStretch(1)
        self.rates = QLabel("display — fps · classify — fps\nlatency — ms (capture → screen)")
        self.rates.setObjectName("rates")
        self.backend = QLabel()
        for label in (self.rates, self.backend):
            label.setWordWrap(True)
            outer.addWidget(label)
        self._verdict_key: tuple | None = None
        self.set_kiosk(False)

    def set_actions(self, reset: QAction, export: QAction) -> None:
        self.reset_button.setDefaultAction(reset)
        self.export_button.setDefaultAction(export)

    def set_kiosk(self, kiosk: bool, screen_width: int | None = None) -> None:
        """Kiosk: a huge verdict, nothing to fiddle with; a third of the screen at most."""
        width = KIOSK_PANEL_WIDTH if kiosk else PANEL_WIDTH
        if kiosk and screen_width:
            width = min(width, screen_width // 3)
        self.set_width(width)
        self._verdict_points = 60 if kiosk else 30
        font = QFont(self.font())
        font.setPointSize(15 if kiosk else self._base_points)
        # bars, tally and rates readable from across a room in kiosk mode; set one by one,
        # as the window's style sheet stops fonts propagating from the panel
        for child in (self, *self.findChildren(QWidget)):
            if child is not self.verdict and child is not self.detail:
                child.setFont(font)
        self.verdict.setMinimumHeight(150 if kiosk else 64)
        detail = QFont(self.font())
        detail.setPointSize(16 if kiosk else 10)
        self.detail.setFont(detail)
        # two lines always reserved: a subtitle that wraps does not make the panel jump
        self.detail.setFixedHeight(2 * self.detail.fontMetrics().lineSpacing() + 6)
        self._fit_verdict(self.verdict.text())
        self.thresholds_box.setVisible(not kiosk)
        self.reset_button.setVisible(not kiosk)
        self.export_button.setVisible(not kiosk)
        self.show_figures(not kiosk)  # a public screen shows no engineering figures
        self._verdict_key = None

    def set_width(self, width: int) -> None:
        if width != self.width() or self.minimumWidth() != width:
            self.setFixedWidth(width)
            if self.on_width is not None:
                self.on_width(width)

    def show_figures(self, shown: bool) -> None:
        """Rates, latency and backend: for staff (kiosk: F12 shows them)."""
        self.rates.setVisible(shown)
        self.backend.setVisible(shown)

    # -- what the window feeds in -------------------------------------------------------------

    def show_empty(self, learning: bool = False) -> None:
        """Item finding sees nothing on the table (or is still learning what empty is)."""
        if learning:
            self._set_verdict("LEARNING", (60, 60, 60), "learning the empty table: keep it clear")
        else:
            self._set_verdict("NOTHING THERE", (60, 60, 60), "put an item in view")
        for bar in (*self.stage1_bars.values(), *self.stage2_bars.values()):
            bar.set_value(None)

    def show_result(self, result: CascadeResult | None, regions: int = 1) -> None:
        if result is None:
            self._set_verdict("—", (60, 60, 60), "no region in view")
            for bar in (*self.stage1_bars.values(), *self.stage2_bars.values()):
                bar.set_value(None)
            return
        which = f" · largest of {regions}" if regions > 1 else ""
        s1, s2 = result.stage1, result.stage2
        if result.label == UNCERTAIN:
            why = f"best guess {s2.label if s2 else s1.label} {result.score:.2f}"
        elif result.taught > 0:  # the site profile's taught photos decided it
            why = f"taught at this site {result.score:.2f} ({result.bin})"
        elif s2 is not None:
            why = f"{s1.label} {s1.score:.2f} · {s2.label} {s2.score:.2f}"
        else:
            why = f"{s1.label} {s1.score:.2f}"
        self._set_verdict(result.label.upper(), colour_for(result.label), why + which)
        for label, p in zip(self.stage1_labels, s1.probabilities, strict=False):
            self.stage1_bars[label].set_value(p, highlight=label == s1.label)
        if s2 is None:
            for bar in self.stage2_bars.values():
                bar.set_value(None)
            self.stage2_box.setTitle("Stage 2: material (not run: organic)")
        else:
            for label, p in zip(self.stage2_labels, s2.probabilities, strict=False):
                self.stage2_bars[label].set_value(p, highlight=label == s2.label)
            self.stage2_box.setTitle("Stage 2: material")

    def _set_verdict(self, text: str, colour: tuple[int, int, int], detail: str) -> None:
        key = (text, colour)
        if key != self._verdict_key:  # restyling is the costly part: only when it changes
            self._verdict_key = key
            fg = text_colour_on(colour)
            self.verdict.setStyleSheet(
                f"background: rgb{colour}; color: rgb{fg}; border-radius: 6px; padding: 4px;"
            )
            self.verdict.setText(text)
            self._fit_verdict(text)
        self.detail.setText(detail)

    def _fit_verdict(self, text: str) -> None:
        """The largest type (up to the mode's size) in which the verdict fits the panel."""
        room = self.maximumWidth() - 40  # panel margins, label padding
        font = QFont(self.font())
        font.setBold(True)
        points = self._verdict_points
        font.setPointSize(points)
        while points > 12 and QFontMetrics(font).horizontalAdvance(text) > room:
            points -= 2
            font.setPointSize(points)
        self.verdict.setFont(font)

    def set_stage1_marker(self, threshold: float) -> None:
        if "recyclable" in self.stage1_bars:
            self.stage1_bars["recyclable"].set_marker(threshold)

    def _add_tally_row(self, name: str) -> QLabel:
        """One class's swatch, name and count: the base classes three rows to a column in
        two columns, a taught class (battery, ...) on the rows below, two to a row."""
        i = len(self.tally_counts)
        swatch = QLabel()
        swatch.setFixedSize(10, 10)
        swatch.setStyleSheet(f"background: rgb{colour_for(name)};")
        count = QLabel("0")
        count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row, col = (i % 3, (i // 3) * 3) if i < 6 else (3 + (i - 6) // 2, ((i - 6) % 2) * 3)
        self.tally_grid.addWidget(swatch, row, col)
        self.tally_grid.addWidget(QLabel(name), row, col + 1)
        self.tally_grid.addWidget(count, row, col + 2)
        self.tally_counts[name] = count
        return count

    def set_tally_title(self, title: str) -> None:
        self.tally_box.setTitle(title)

    def show_tally(self, rows: list[tuple[str, int]], total: int) -> None:
        for name, count in rows:
            label = self.tally_counts.get(name)
            if label is None and count:  # a class a site profile taught (battery, ...)
                label = self._add_tally_row(name)
            if label is not None:
                label.setText(str(count))
        self.tally_total.setText(f"total {total}")

    def show_rates(self, display_fps: float, classify_fps: float, latency_ms: float | None) -> None:
        latency = "—" if latency_ms is None else f"{latency_ms:.0f}"
        self.rates.setText(
            f"display {display_fps:.1f} fps · classify {classify_fps:.1f} fps\n"
            f"latency {latency} ms (capture → screen)"
        )

    def show_backend(self, text: str) -> None:
        self.backend.setText(f"backend {text}")


def _bar_group(title: str, labels) -> tuple[QGroupBox, dict[str, ProbabilityBar]]:
    """A titled box with one probability bar per label, in the labels' order."""
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setSpacing(3)
    bars = {label: ProbabilityBar(label) for label in labels}
    for bar in bars.values():
        layout.addWidget(bar)
    return box, bars


class PanelScroll(QScrollArea):
    """The panel in a vertical scroll area: everything it shows (bars, sliders, tally) stays
    reachable in a short window instead of forcing the window's minimum height up (a
    1366x768 laptop, or 640x480)."""

    def __init__(self, panel: Panel, parent: QWidget | None = None):
        super().__init__(parent)
        self.panel = panel
        self.setObjectName("panelScroll")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setWidget(panel)
        panel.on_width = self._follow
        self._follow(panel.width())

    def _follow(self, width: int) -> None:
        """As wide as the panel plus room for the scroll bar (shown only when needed)."""
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        self.setFixedWidth(width + bar)
