"""Where the window looks for items: found by themselves, zones drawn on the video (fixed or
following their item), the learnt empty table — the Regions menu and the mouse on the video.

Each edit makes new zones (``region_edits``) and hands them to the session in one
assignment (``LiveSession.set_zones``: the pipeline's configuration); the pipeline thread
ends the item being counted from the verdicts when it takes zones or a mode that differ from
the last frame's (``FrameClassifier``), so a count never spans two different setups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waste_vision.app import region_edits
from waste_vision.labels import Mode

if TYPE_CHECKING:  # the window makes this controller and hands itself in
    from waste_vision.app.window import MainWindow


class RegionControls:
    def __init__(self, window: MainWindow):
        self.window = window
        self.session = window.session
        window.video.regionDrawn.connect(self._on_drawn)
        window.video.regionRemoveRequested.connect(self._on_remove)
        window.video.regionTrackToggled.connect(self._on_track_toggled)

    def tick(self) -> None:
        """The status-bar label, and the remove actions enabled only with something to remove."""
        drawn = len(self.session.zones)
        self.window.regions_label.setText(
            f"regions: {drawn}"
            if drawn
            else "finding items"
            if self.session.mode is Mode.ITEMS
            else "whole frame"
        )
        if not self.window.kiosk:
            self.window.set_action_enabled(self.window.act.remove_region, drawn > 0)
            self.window.set_action_enabled(self.window.act.clear_regions, drawn > 0)

    def set_find_items(self, checked: bool) -> None:
        self.session.set_mode(Mode.ITEMS if checked else Mode.FRAME)
        self.window.settings.find_items = checked
        self.window.show_status(
            "Finding items on the table" if checked else "Classifying the whole frame", 5000
        )

    def learn_empty_scene(self) -> None:
        self.session.relearn_empty_scene()
        self.window.show_status("Learning the empty table: keep the view clear for a moment", 5000)

    def set_tracking(self, checked: bool) -> None:
        self.session.set_zones(region_edits.tracking(self.session.zones, checked))
        self.window.show_status(
            "Regions follow their items (and return where drawn when the item leaves)"
            if checked
            else "Regions stay where they were drawn",
            5000,
        )

    def remove_last(self) -> None:
        self.session.set_zones(region_edits.without_last(self.session.zones))

    def clear(self) -> None:
        self.session.set_zones(())
        what = (
            "items are found by themselves again"
            if self.window.act.find_items.isChecked()
            else "the whole frame is classified"
        )
        self.window.show_status(f"Regions cleared: {what}", 5000)

    def _on_drawn(self, box: tuple) -> None:
        track = self.window.act.track_regions.isChecked()
        x, y, w, h = (int(v) for v in box)
        self.session.set_zones(region_edits.added(self.session.zones, (x, y, w, h), track))
        what = "follows its item" if track else "stays where drawn"
        self.window.show_status(
            f"Region added at {box}: it {what} (right-click removes it, "
            "double-click switches following; T: all regions)",
            5000,
        )

    def _on_remove(self, x: float, y: float) -> None:
        zones, placed = self.session.zones, self.session.zones_placed
        self.session.set_zones(region_edits.removed_at(zones, placed, x, y))

    def _on_track_toggled(self, x: float, y: float) -> None:
        zones, placed = self.session.zones, self.session.zones_placed
        self.session.set_zones(region_edits.toggled_at(zones, placed, x, y))
        self.window.show_status("Region switched between following its item and staying put", 5000)
