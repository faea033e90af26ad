"""The cascade's decision rule as the window shows and changes it.

The sliders change the pipeline configuration's thresholds (``LiveSession.set_thresholds``:
a new immutable configuration, taken by the pipeline at its next frame), never the cascade's
own rule, which stays the model's; the sliders show what was accepted (clamped), and the
settings remember it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waste_vision.model.cascade import Cascade

if TYPE_CHECKING:  # the window makes this controller and hands itself in
    from waste_vision.app.window import MainWindow


def backend_text(cascade: Cascade) -> str:
    """What the window shows as the backend, e.g. ``LiteRT (fused)``."""
    name = {"litert": "LiteRT", "keras": "Keras"}.get(cascade.backend, cascade.backend)
    return f"{name} (fused)" if getattr(cascade, "uses_fused", False) else name


class ThresholdControls:
    """The panel's two sliders and Reset thresholds, wired to the session's configuration."""

    def __init__(self, window: MainWindow):
        self.window = window
        self.session = window.session
        self.settings = window.settings
        self.panel = window.panel
        self.panel.stage1_slider.valueChanged.connect(self._on_stage1)
        self.panel.uncertain_slider.valueChanged.connect(self._on_uncertain)

    def load(self) -> None:
        """The thresholds remembered from the last run (the model's where none); with none
        remembered the configuration keeps no rule of its own (the cascade's, ``None``)."""
        stage1, uncertain = self.settings.threshold("stage1"), self.settings.threshold("uncertain")
        if stage1 is None and uncertain is None:
            self._show(self.session.reset_thresholds())
        else:
            self._show(self.session.set_thresholds(stage1, uncertain))

    def reset(self) -> None:
        self._show(self.session.reset_thresholds())
        self.settings.set_threshold("stage1", None)
        self.settings.set_threshold("uncertain", None)
        self.window.show_status("Thresholds back to the model's", 5000)

    def _show(self, rule) -> None:
        self.panel.stage1_slider.set_value(rule.stage1_threshold, emit=False)
        self.panel.uncertain_slider.set_value(rule.min_confidence, emit=False)
        self.panel.set_stage1_marker(rule.stage1_threshold)

    def _on_stage1(self, value: float) -> None:
        rule = self.session.set_thresholds(stage1=value)
        self.settings.set_threshold("stage1", rule.stage1_threshold)
        self.panel.set_stage1_marker(rule.stage1_threshold)

    def _on_uncertain(self, value: float) -> None:
        rule = self.session.set_thresholds(min_confidence=value)
        self.settings.set_threshold("uncertain", rule.min_confidence)
