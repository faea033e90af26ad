"""The window's actions, menus and toolbar, laid out in one place (as Qt Designer's
``setupUi`` would): which command has which shortcut, and where it shows. The slots live
on the window (sources, view) and its controllers (recording, regions, thresholds, tally);
this module only wires them to actions."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar, QToolButton


def _action(
    window,
    text: str,
    shortcut: str | QKeySequence | None = None,
    slot=None,
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
    window.all_actions.append(action)
    return action


def build_actions(window) -> None:
    """Every command as a QAction on the window (``window.act_*``), its shortcut working
    with the menu bar hidden (kiosk)."""
    window.all_actions = []

    def a(*args, **kwargs) -> QAction:
        return _action(window, *args, **kwargs)

    window.act_start = a(
        "Start", "Space", window.toggle_running, tip="Start or stop the current source"
    )
    window.act_record = a(
        "Record",
        "Ctrl+R",
        window.recording_controls.toggle,
        checkable=True,
        tip="Record the annotated video (and a JSONL log) to the recording folder",
    )
    window.act_snapshot = a(
        "Snapshot",
        "Ctrl+S",
        window.recording_controls.snapshot,
        tip="Save the annotated frame as a PNG in the recording folder",
    )
    window.act_open_video = a("Open video…", "Ctrl+O", window.ask_video, tip="Play a video file")
    window.act_open_stream = a(
        "Open stream URL…",
        "Ctrl+U",
        window.ask_stream,
        tip="Play an rtsp://, http:// or https:// stream",
    )
    window.act_open_folder = a(
        "Open image folder…",
        "Ctrl+Shift+O",
        window.ask_folder,
        tip="Show a folder's images as a slideshow",
    )
    window.act_demo = a(
        "Play demo clip", "Ctrl+D", window.play_demo, tip="Play the bundled demo clip"
    )
    window.act_loop = a(
        "Loop files",
        "Ctrl+L",
        window.set_loop,
        checkable=True,
        tip="Start video files and folders again when they end",
    )
    window.act_rescan = a(
        "Rescan cameras", "F5", window.rescan_cameras, tip="Look for cameras again"
    )
    window.act_rec_folder = a(
        "Recording folder…",
        None,
        window.recording_controls.ask_folder,
        tip="Where recordings and snapshots go",
    )
    window.act_open_rec_folder = a(
        "Open recordings folder",
        None,
        window.recording_controls.open_folder,
        tip="Show the recordings and snapshots in the file manager",
    )
    regions = window.region_controls
    window.act_remove_region = a(
        "Remove last region", "Backspace", regions.remove_last, tip="Remove the region drawn last"
    )
    window.act_clear_regions = a(
        "Clear regions",
        "Delete",
        regions.clear,
        tip="Remove all drawn regions: items are found by themselves again",
    )
    window.act_track_regions = a(
        "Regions follow items",
        "T",
        regions.set_tracking,
        checkable=True,
        tip="Drawn regions follow the item in them and return "
        "where drawn when it leaves; off: fixed zones",
    )
    window.act_find_items = a(
        "Find items",
        "I",
        regions.set_find_items,
        checkable=True,
        tip="Find each item on the table and classify it on its own; "
        "off: classify the whole frame (one item close up)",
    )
    window.act_explain = a(
        "Explain",
        "X",
        window.session.set_explain,
        checkable=True,
        tip="Show where the model looked on each item (heat map)",
    )
    window.act_learn_empty = a(
        "Learn empty table",
        "E",
        regions.learn_empty_scene,
        tip="Take the view as it is now (clear the table first) as the empty scene",
    )
    window.act_s1_down = a(
        "Stage-1 threshold −0.01", "[", lambda: window.panel.stage1_slider.step(-1)
    )
    window.act_s1_up = a("Stage-1 threshold +0.01", "]", lambda: window.panel.stage1_slider.step(1))
    window.act_unc_down = a(
        "Uncertain threshold −0.01", "-", lambda: window.panel.uncertain_slider.step(-1)
    )
    window.act_unc_up = a(
        "Uncertain threshold +0.01", "=", lambda: window.panel.uncertain_slider.step(1)
    )
    window.act_reset_thresholds = a(
        "Reset thresholds",
        "Ctrl+0",
        window.threshold_controls.reset,
        tip="Back to the model's calibrated thresholds",
    )
    window.act_reset_tally = a(
        "Reset tally",
        "Ctrl+Shift+T",
        window.tally_controls.reset,
        tip="Set every count back to zero",
    )
    window.act_undo_reset_tally = a(
        "Undo reset tally",
        "Ctrl+Z",
        window.tally_controls.undo_reset,
        tip="Bring back the counts the last reset cleared",
    )
    window.set_action_enabled(window.act_undo_reset_tally, False)
    window.act_export_tally = a(
        "Export tally…", "Ctrl+E", window.tally_controls.export, tip="Save the counts as a CSV file"
    )
    window.act_fullscreen = a("Full screen", "F11", window.toggle_fullscreen, checkable=True)
    window.act_staff_figures = a(
        "Show figures",
        "F12",
        window.show_staff_figures,
        checkable=True,
        tip="Rates, latency and backend (hidden in kiosk mode)",
    )
    # kiosk: F12 asks for the staff PIN (kiosk.py gives it the key; no shortcut elsewhere)
    window.act_staff_mode = a(
        "Staff mode",
        None,
        window.toggle_staff_mode,
        tip="Kiosk: unlock the controls with the staff PIN; again: lock",
    )
    window.act_shortcuts = a("Keyboard shortcuts", "F1", window.show_shortcuts)
    window.act_about = a(
        "About waste-vision", None, window.show_about, tip="Versions, profile and where the log is"
    )
    window.act_quit = a("Quit", "Ctrl+Q", window.quit_app)
    # the one way out of kiosk mode; works in the normal window too
    window.act_quit_kiosk = a("Quit (kiosk)", "Ctrl+Shift+Q", window.quit_app)
    # what the public may do at a locked kiosk: leave (on purpose) and ask for staff mode
    window.public_actions = {window.act_quit_kiosk, window.act_staff_mode}
    window.panel.set_actions(window.act_reset_tally, window.act_export_tally)


def build_menus_and_toolbar(window) -> None:
    """Where the actions show: the menu bar, and the toolbar for the frequent ones."""
    bar = window.menuBar()
    source = bar.addMenu("&Source")
    window.camera_menu = QMenu("Camera", window)
    window.camera_menu.addAction("Looking for cameras…").setEnabled(False)
    source.addMenu(window.camera_menu)
    for act in (
        window.act_open_video,
        window.act_open_stream,
        window.act_open_folder,
        window.act_demo,
    ):
        source.addAction(act)
    source.addSeparator()
    source.addAction(window.act_loop)
    source.addAction(window.act_rescan)
    source.addSeparator()
    source.addAction(window.act_quit)
    run = bar.addMenu("&Run")
    for act in (window.act_start, window.act_record, window.act_snapshot):
        run.addAction(act)
    run.addSeparator()
    run.addAction(window.act_rec_folder)
    run.addAction(window.act_open_rec_folder)
    regions = bar.addMenu("Re&gions")
    regions.addAction(window.act_find_items)
    regions.addAction(window.act_learn_empty)
    regions.addAction(window.act_explain)
    regions.addSeparator()
    regions.addAction(window.act_track_regions)
    regions.addAction(window.act_remove_region)
    regions.addAction(window.act_clear_regions)
    thresholds = bar.addMenu("&Thresholds")
    for act in (
        window.act_s1_down,
        window.act_s1_up,
        window.act_unc_down,
        window.act_unc_up,
        window.act_reset_thresholds,
    ):
        thresholds.addAction(act)
    tally = bar.addMenu("T&ally")
    tally.addAction(window.act_reset_tally)
    tally.addAction(window.act_undo_reset_tally)
    tally.addAction(window.act_export_tally)
    view = bar.addMenu("&View")
    view.addAction(window.act_fullscreen)
    view.addAction(window.act_staff_figures)
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(window.act_shortcuts)
    help_menu.addAction(window.act_about)

    window.toolbar = QToolBar("Controls")
    window.toolbar.setObjectName("controls")
    window.toolbar.setMovable(False)
    window.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    window.toolbar.addAction(window.act_start)
    window.toolbar.addAction(window.act_record)
    window.toolbar.addAction(window.act_snapshot)
    window.toolbar.addSeparator()
    camera_button = QToolButton()
    camera_button.setText("Camera")
    camera_button.setMenu(window.camera_menu)
    camera_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    window.toolbar.addWidget(camera_button)
    for act in (
        window.act_open_video,
        window.act_open_stream,
        window.act_open_folder,
        window.act_demo,
        window.act_loop,
    ):
        window.toolbar.addAction(act)
    window.toolbar.addSeparator()
    window.toolbar.addAction(window.act_find_items)
    window.toolbar.addAction(window.act_learn_empty)
    window.toolbar.addAction(window.act_explain)
    window.toolbar.addAction(window.act_clear_regions)
    window.addToolBar(window.toolbar)
    # Start/Stop and Record/Stop recording change their text: fixed widths keep the
    # toolbar from shifting under the pointer
    metrics = window.toolbar.fontMetrics()
    for act, texts in (
        (window.act_start, ("Start", "Stop")),
        (window.act_record, ("Record", "Stop recording")),
    ):
        button = window.toolbar.widgetForAction(act)
        if button is not None:
            button.setFixedWidth(max(metrics.horizontalAdvance(t) for t in texts) + 20)
