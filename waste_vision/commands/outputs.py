"""Checks on a command's output files made before any file is opened for writing.

A user's files are sacred: an output that is one of the command's inputs (``annotate
clip.mp4 -o clip.mp4``), two outputs that are one file, or an output that already exists
(unless ``--overwrite``) is refused with one line and exit 2. "The same file" is compared by
resolved path and, for files that exist, by ``os.path.samefile``, so symlinks, hard links
and ``./x`` vs ``x`` are all caught.
"""

from __future__ import annotations

import os
from pathlib import Path

from waste_vision.errors import UserError

OVERWRITE_HINT = "add --overwrite to replace it"


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (or would, once created)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: fall through to samefile
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): resolve() already said no
        return False


def check_outputs(
    outputs: dict[str, Path | None],
    inputs: dict[str, Path | None] | None = None,
    *,
    overwrite: bool | None = None,
) -> None:
    """Refuse (``UserError``, exit 2) an output that is an input, two outputs that are one
    file, and, where ``overwrite`` is False, an output that exists. ``overwrite=None``: the
    command replaces existing outputs by design (no --overwrite option).

    ``outputs`` maps the option that names the file (``-o``) to it, ``inputs`` a description
    (``the input``) to it; None values are left out. Never replace an input, whatever ``overwrite`` says.
    """
    outs = [(name, Path(p).expanduser()) for name, p in outputs.items() if p is not None]
    ins = [(name, Path(p).expanduser()) for name, p in (inputs or {}).items() if p is not None]
    for out_name, out in outs:
        for in_name, src in ins:
            if src.exists() and same_file(out, src):
                raise UserError(
                    f"{out_name} {out} is {in_name} {src}: writing it "
                    "would destroy what is being read; give the output another "
                    "name"
                )
    for i, (name_a, a) in enumerate(outs):
        for name_b, b in outs[i + 1 :]:
            if same_file(a, b):
                raise UserError(
                    f"{name_a} {a} and {name_b} {b} are the same file; give each "
                    "output its own name"
                )
    if overwrite is False:
        for name, out in outs:
            if out.exists() and not out.is_dir():
                raise UserError(
                    f"{name} {out} already exists; {OVERWRITE_HINT} (or choose another name)"
                )
