"""The window's actions, menus and toolbar, laid out in one place (as Qt Designer's
``setupUi`` would): which command has which shortcut, and where it shows. The slots live
on the window (sources, view) and its controllers (recording, regions, thresholds, tally);
this module only wires them to actions.

The actions are one typed object, ``WindowActions`` (``window.actions``): the controllers
reach them as ``window.actions.record`` and the like, which a type checker follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar, QToolButton

if TYPE_CHECKING:  # the window builds its actions with this module
    from waste_vision.app.window import MainWindow


@dataclass(frozen=True)
class WindowActions:
    """Every command of the window as a QAction, in the order the shortcuts list shows them.

    Each has its shortcut on the window itself, so it works with the menu bar hidden (kiosk).
    """

    start: QAction
    record: QAction
    snapshot: QAction
    open_video: QAction
    open_stream: QAction
    open_folder: QAction
    demo: QAction
    loop: QAction
    rescan: QAction
    rec_folder: QAction
    open_rec_folder: QAction
    remove_region: QAction
    clear_regions: QAction
    track_regions: QAction
    find_items: QAction
    explain: QAction
    learn_empty: QAction
    s1_down: QAction
    s1_up: QAction
    unc_down: QAction
    unc_up: QAction
    reset_thresholds: QAction
    teach: QAction  # Teach mode (app/teach.py): staff-only at a kiosk
    undo_teach: QAction
    site_profile: QAction
    reset_tally: QAction
    undo_reset_tally: QAction
    export_tally: QAction
    history: QAction  # the item history (app/history.py): staff-only at a kiosk
    fullscreen: QAction
    staff_figures: QAction
    staff_mode: QAction  # kiosk: F12 asks for the staff PIN (kiosk.py gives it the key)
    shortcuts: QAction
    about: QAction
    quit: QAction
    quit_kiosk: QAction  # the one way out of kiosk mode; works in the normal window too

    @property
    def all(self) -> tuple[QAction, ...]:
        """Every action, in field order."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def public(self) -> frozenset[QAction]:
        """What the public may do at a locked kiosk: leave (on purpose) and ask for staff mode."""
        return frozenset({self.quit_kiosk, self.staff_mode})


def _action(
    window: MainWindow,
    text: str,
    shortcut: str | QKeySequence | None = None,
    slot: Callable[..., Any] | None = None,
    *,
    checkable: bool = False,
    tip: str | None = None,
) -> QAction:
    action = QAction(text, window)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.setCheckable(checkable)
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(f"{tip} ({action.shortcut().toString()})" if shortcut else tip)
    if slot is not None:
        action.triggered.connect(slot)
    window.addAction(action)  # shortcuts work with the menu bar hidden (kiosk)
    return action


def build_actions(window: MainWindow) -> WindowActions:
    """Every command as a QAction on the window, its shortcut working with the menu bar
    hidden (kiosk). Made in field order (keyword arguments are evaluated in order)."""

    def a(*args: Any, **kwargs: Any) -> QAction:
        return _action(window, *args, **kwargs)

    recording = window.recording_controls
    regions = window.region_controls
    panel = window.panel
    return WindowActions(
        start=a("Start", "Space", window.toggle_running, tip="Start or stop the current source"),
        record=a(
            "Record",
            "Ctrl+R",
            recording.toggle,
            checkable=True,
            tip="Record the annotated video (and a JSONL log) to the recording folder",
        ),
        snapshot=a(
            "Snapshot",
            "Ctrl+S",
            recording.snapshot,
            tip="Save the annotated frame as a PNG in the recording folder",
        ),
        open_video=a("Open video…", "Ctrl+O", window.ask_video, tip="Play a video file"),
        open_stream=a(
            "Open stream URL…",
            "Ctrl+U",
            window.ask_stream,
            tip="Play an rtsp://, http:// or https:// stream",
        ),
        open_folder=a(
            "Open image folder…",
            "Ctrl+Shift+O",
            window.ask_folder,
            tip="Show a folder's images as a slideshow",
        ),
        demo=a("Play demo clip", "Ctrl+D", window.play_demo, tip="Play the bundled demo clip"),
        loop=a(
            "Loop files",
            "Ctrl+L",
            window.set_loop,
            checkable=True,
            tip="Start video files and folders again when they end",
        ),
        rescan=a("Rescan cameras", "F5", window.rescan_cameras, tip="Look for cameras again"),
        rec_folder=a(
            "Recording folder…",
            None,
            recording.ask_folder,
            tip="Where recordings and snapshots go",
        ),
        open_rec_folder=a(
            "Open recordings folder",
            None,
            recording.open_folder,
            tip="Show the recordings and snapshots in the file manager",
        ),
        remove_region=a(
            "Remove last region",
            "Backspace",
            regions.remove_last,
            tip="Remove the region drawn last",
        ),
        clear_regions=a(
            "Clear regions",
            "Delete",
            regions.clear,
            tip="Remove all drawn regions: items are found by themselves again",
        ),
        track_regions=a(
            "Regions follow items",
            "T",
            regions.set_tracking,
            checkable=True,
            tip="Drawn regions follow the item in them and return "
            "where drawn when it leaves; off: fixed zones",
        ),
        find_items=a(
            "Find items",
            "I",
            regions.set_find_items,
            checkable=True,
            tip="Find each item on the table and classify it on its own; "
            "off: classify the whole frame (one item close up)",
        ),
        explain=a(
            "Explain",
            "X",
            window.session.set_explain,
            checkable=True,
            tip="Show where the model looked on each item (heat map)",
        ),
        learn_empty=a(
            "Learn empty table",
            "E",
            regions.learn_empty_scene,
            tip="Take the view as it is now (clear the table first) as the empty scene",
        ),
        s1_down=a("Stage-1 threshold −0.01", "[", lambda: panel.stage1_slider.step(-1)),
        s1_up=a("Stage-1 threshold +0.01", "]", lambda: panel.stage1_slider.step(1)),
        unc_down=a("Uncertain threshold −0.01", "-", lambda: panel.uncertain_slider.step(-1)),
        unc_up=a("Uncertain threshold +0.01", "=", lambda: panel.uncertain_slider.step(1)),
        reset_thresholds=a(
            "Reset thresholds",
            "Ctrl+0",
            window.threshold_controls.reset,
            tip="Back to the model's calibrated thresholds",
        ),
        teach=a(
            "Teach this item…",
            "Ctrl+T",
            window.teach_controls.teach_current,
            tip="Tell the classifier what the item in view is: the next frame uses it "
            "(a site profile)",
        ),
        undo_teach=a(
            "Undo last taught photo",
            "Ctrl+Shift+Z",
            window.teach_controls.undo_last,
            tip="Take back the photo taught last",
        ),
        site_profile=a(
            "Site profile…",
            "Ctrl+P",
            window.teach_controls.show_profile,
            tip="The taught classes and photos: remove a wrong one, undo the last",
        ),
        reset_tally=a(
            "Reset tally",
            "Ctrl+Shift+T",
            window.tally_controls.reset,
            tip="Set every count back to zero",
        ),
        undo_reset_tally=a(
            "Undo reset tally",
            "Ctrl+Z",
            window.tally_controls.undo_reset,
            tip="Bring back the counts the last reset cleared",
        ),
        export_tally=a(
            "Export tally…",
            "Ctrl+E",
            window.tally_controls.export,
            tip="Save the counts of the period shown as a CSV file",
        ),
        history=a(
            "Item history",
            "Ctrl+H",
            window.history.set_shown,
            checkable=True,
            tip="The items counted, newest first: correct a wrong label",
        ),
        fullscreen=a("Full screen", "F11", window.toggle_fullscreen, checkable=True),
        staff_figures=a(
            "Show figures",
            "F12",
            window.show_staff_figures,
            checkable=True,
            tip="Rates, latency and backend (hidden in kiosk mode)",
        ),
        # kiosk: F12 asks for the staff PIN (kiosk.py gives it the key; no shortcut elsewhere)
        staff_mode=a(
            "Staff mode",
            None,
            window.toggle_staff_mode,
            tip="Kiosk: unlock the controls with the staff PIN; again: lock",
        ),
        shortcuts=a("Keyboard shortcuts", "F1", window.show_shortcuts),
        about=a(
            "About waste-vision",
            None,
            window.show_about,
            tip="Versions, profile and where the log is",
        ),
        quit=a("Quit", "Ctrl+Q", window.quit_app),
        # the one way out of kiosk mode; works in the normal window too
        quit_kiosk=a("Quit (kiosk)", "Ctrl+Shift+Q", window.quit_app),
    )


def build_menus_and_toolbar(window: MainWindow, actions: WindowActions) -> tuple[QMenu, QToolBar]:
    """Where the actions show: the menu bar, and the toolbar for the frequent ones.
    Returns the camera menu (filled once the cameras are probed) and the toolbar."""
    act = actions
    bar = window.menuBar()
    source = bar.addMenu("&Source")
    camera_menu = QMenu("Camera", window)
    camera_menu.addAction("Looking for cameras…").setEnabled(False)
    source.addMenu(camera_menu)
    for action in (act.open_video, act.open_stream, act.open_folder, act.demo):
        source.addAction(action)
    source.addSeparator()
    source.addAction(act.loop)
    source.addAction(act.rescan)
    source.addSeparator()
    source.addAction(act.quit)
    run = bar.addMenu("&Run")
    for action in (act.start, act.record, act.snapshot):
        run.addAction(action)
    run.addSeparator()
    run.addAction(act.rec_folder)
    run.addAction(act.open_rec_folder)
    regions = bar.addMenu("Re&gions")
    regions.addAction(act.find_items)
    regions.addAction(act.learn_empty)
    regions.addAction(act.explain)
    regions.addSeparator()
    regions.addAction(act.track_regions)
    regions.addAction(act.remove_region)
    regions.addAction(act.clear_regions)
    thresholds = bar.addMenu("&Thresholds")
    for action in (act.s1_down, act.s1_up, act.unc_down, act.unc_up, act.reset_thresholds):
        thresholds.addAction(action)
    teach = bar.addMenu("T&each")
    for action in (act.teach, act.undo_teach, act.site_profile):
        teach.addAction(action)
    tally = bar.addMenu("T&ally")
    tally.addAction(act.reset_tally)
    tally.addAction(act.undo_reset_tally)
    tally.addAction(act.export_tally)
    view = bar.addMenu("&View")
    view.addAction(act.fullscreen)
    view.addAction(act.staff_figures)
    view.addAction(act.history)
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(act.shortcuts)
    help_menu.addAction(act.about)

    toolbar = QToolBar("Controls")
    toolbar.setObjectName("controls")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    toolbar.addAction(act.start)
    toolbar.addAction(act.record)
    toolbar.addAction(act.snapshot)
    toolbar.addSeparator()
    camera_button = QToolButton()
    camera_button.setText("Camera")
    camera_button.setMenu(camera_menu)
    camera_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    toolbar.addWidget(camera_button)
    for action in (act.open_video, act.open_stream, act.open_folder, act.demo, act.loop):
        toolbar.addAction(action)
    toolbar.addSeparator()
    toolbar.addAction(act.find_items)
    toolbar.addAction(act.learn_empty)
    toolbar.addAction(act.explain)
    toolbar.addAction(act.clear_regions)
    window.addToolBar(toolbar)
    # Start/Stop and Record/Stop recording change their text: fixed widths keep the
    # toolbar from shifting under the pointer
    metrics = toolbar.fontMetrics()
    for action, texts in (
        (act.start, ("Start", "Stop")),
        (act.record, ("Record", "Stop recording")),
    ):
        button = toolbar.widgetForAction(action)
        if button is not None:
            button.setFixedWidth(max(metrics.horizontalAdvance(t) for t in texts) + 20)
    return camera_menu, toolbar
