"""The live window (``waste-vision app``): PySide6 on top of the headless engine.

Data flows one way: source (capture thread) -> pipeline (worker thread) -> ``bridge`` (the
one crossing into the GUI thread) -> window. The window only subscribes; everything slow
(opening a camera, stopping a source, closing a recording) runs on ``session``'s control
thread, so the GUI thread only ever paints and updates labels.

Modules: ``bridge`` (pipeline -> GUI, latest frame wins), ``session`` (the engine's life
cycle, recording), ``video_widget`` (painting, region drawing), ``panel`` (verdict, bars,
tally), ``window`` (menus, actions, status bar), ``kiosk`` (the unattended mode),
``tally``/``stats``/``region_edits``/``tuning``/``settings`` (plain helpers), ``credentials``
(asking for a stream's login again), ``about`` (Help > About), ``main`` (arguments,
QApplication, log file, exit-after, stats, screenshot).
"""
