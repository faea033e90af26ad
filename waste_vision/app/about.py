"""What Help > About says: which program, which models, which profile, and where the log is —
the four things a bug report needs."""

from __future__ import annotations

import hashlib
import html
import json
from importlib import metadata

from waste_vision.logs import log_file


def program_version() -> str:
    try:
        return metadata.version("waste-vision")
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        from waste_vision import __version__

        return __version__


def models_version(manifest) -> str:
    """The manifest's own version where it has one, else a fingerprint of cascade.json."""
    version = getattr(manifest, "version", None)
    path = manifest.root / "cascade.json"
    try:
        data = path.read_bytes()
    except OSError:
        return str(version or "unknown")
    if not version:
        try:
            raw = json.loads(data)
            version = (
                raw.get("version") or raw.get("models_version") if isinstance(raw, dict) else None
            )
        except ValueError:
            version = None
    fingerprint = hashlib.sha256(data).hexdigest()[:12]
    return f"{version} ({fingerprint})" if version else f"cascade.json {fingerprint}"


def profile_name(cascade) -> str | None:
    """The deployment profile in use, where the engine has one."""
    for owner in (cascade, getattr(cascade, "manifest", None)):
        value = getattr(owner, "profile", None)
        if value:
            return str(getattr(value, "name", value))
    return None


def about_lines(cascade) -> list[tuple[str, str]]:
    manifest = cascade.manifest
    rows = [
        ("waste-vision", program_version()),
        ("Models", models_version(manifest)),
        ("Models folder", str(manifest.root)),
    ]
    profile = profile_name(cascade)
    if profile:
        rows.append(("Profile", profile))
    rows.append(("Log file", str(log_file())))
    return rows


def about_html(cascade) -> str:
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td><b>{html.escape(v)}</b></td></tr>"
        for k, v in about_lines(cascade)
    )
    return (
        f"<p>Tells organic from recyclable waste, and the recyclable's material.</p>"
        f"<table>{body}</table>"
    )
