"""The installed set is the tested set: constraints.txt pins every package the dev extra
installs, and this venv holds exactly those versions (CI and the README install with
``-c constraints.txt``). tools/test_latest.sh sets WASTE_VISION_UNPINNED=1 on purpose: there
the differences are printed instead."""

from __future__ import annotations

import os
import re
import warnings
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        assert m, f"constraints.txt: {line!r} is not an exact pin (name==version)"
        pins[_norm(m.group(1))] = m.group(2)
    return pins


def test_every_direct_dependency_is_pinned():
    pins = _pins()
    requires = metadata.requires("waste-vision") or []
    names = {_norm(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0]) for r in requires}
    # the platform-only ones (Windows/macOS TensorFlow, CUDA) are not installed here
    names -= {"tensorflow-and-cuda"}
    missing = sorted(n for n in names if n not in pins and _installed(n))
    assert not missing, f"not pinned in constraints.txt: {missing}"
    # the packages whose versions decide the bundle (one FFmpeg) and the models' results
    for name in (
        "opencv-python-headless",
        "av",
        "ai-edge-litert",
        "numpy",
        "tensorflow",
        "pyside6-essentials",
        "pyinstaller",
    ):
        assert name in pins


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_installed_versions_are_the_pinned_ones():
    pins = _pins()
    differ = []
    for dist in metadata.distributions():
        name = _norm(dist.metadata["Name"])
        if name == "waste-vision" or name not in pins:
            continue
        if dist.version != pins[name]:
            differ.append(f"{name} {dist.version} (pinned {pins[name]})")
    unpinned = sorted(
        _norm(d.metadata["Name"])
        for d in metadata.distributions()
        if _norm(d.metadata["Name"]) not in pins | {"waste-vision": ""}
    )
    if os.environ.get("WASTE_VISION_UNPINNED") == "1":
        if differ:
            warnings.warn("newer than the tested set: " + ", ".join(sorted(differ)), stacklevel=2)
        return
    assert not differ, "installed versions differ from constraints.txt: " + ", ".join(differ)
    assert not unpinned, f"installed but not in constraints.txt: {unpinned}"
