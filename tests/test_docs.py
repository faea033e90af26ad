"""The documentation keeps up with the code: docs/cli.md names every command, option and
choice the parser has (each in its command's section), the README stays short, and every
relative link in README.md and docs/*.md points to a file that exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from waste_vision.commands.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"
README_MAX_BYTES = 10_000  # issue 23: "README.md at most 10 KB"
GLOBAL_SECTION = "Global options"  # where the main parser's own options are documented
PROG = "waste-vision"


# -- the parser -----------------------------------------------------------------------------


def _sub_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every sub-command's parser with its name path (``("teach", "add")``), nested ones
    included, in the parser's order."""
    found = []
    for action in _sub_actions(parser):
        for name, child in action.choices.items():
            found.append(((*path, name), child))
            found.extend(commands(child, (*path, name)))
    return found


def documented_names(parser: argparse.ArgumentParser) -> list[str]:
    """What a command's section must name: each long option string (``--events``), each
    positional's metavar (``PATH``, ``SRC``) and each choice (``jsonl``, ``field``).
    ``--help`` and the ``-v``/``-q`` copies every sub-command gets are the global options'."""
    names: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.dest.startswith("sub_"):  # -v/-q after the sub-command (cli._add_loudness)
            continue
        if action.option_strings:
            names += [s for s in action.option_strings if s.startswith("--")]
        else:
            metavar = action.metavar if isinstance(action.metavar, str) else None
            names.append(metavar or action.dest.upper())
        if action.choices is not None:
            names += [str(c) for c in action.choices]
    return names


# -- the document ---------------------------------------------------------------------------


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _strip_code_blocks(text: str) -> str:
    """``` fenced blocks blanked (their lines kept, so headings inside are not headings)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else line)
    return "\n".join(out)


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) for every heading; a body runs to the next heading of the same or a
    higher level, so a section holds its sub-sections."""
    lines = text.splitlines()
    plain = _strip_code_blocks(text).splitlines()
    heads = [
        (i, len(m.group(1)), m.group(2))
        for i, line in enumerate(plain)
        if (m := _HEADING.match(line))
    ]
    found = []
    for n, (i, level, title) in enumerate(heads):
        end = next((j for j, lv, _ in heads[n + 1 :] if lv <= level), len(lines))
        found.append((title, "\n".join(lines[i + 1 : end])))
    return found


def command_section(text: str, path: tuple[str, ...]) -> str | None:
    """The section whose heading names the command as `` `waste-vision teach add` ``."""
    code = "`" + " ".join((PROG, *path)) + "`"
    matches = [body for title, body in sections(text) if code in title]
    return matches[0] if matches else None


def named(name: str, text: str) -> bool:
    """``name`` as a whole word: ``--events`` is not named by ``--events-keep-days``."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def undocumented(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """Every command, option, positional and choice of ``parser`` that docs/cli.md text
    ``text`` does not name where it should; empty when the document is complete."""
    missing = []
    top = dict(sections(text)).get(GLOBAL_SECTION)
    if top is None:
        missing.append(f"no '## {GLOBAL_SECTION}' section")
    else:
        top_names = documented_names(parser) + ["--help", "--verbose", "--quiet"]
        missing += [f"{PROG} {n} (in {GLOBAL_SECTION})" for n in top_names if not named(n, top)]
    for path, child in commands(parser):
        command = " ".join((PROG, *path))
        body = command_section(text, path)
        if body is None:
            missing.append(f"{command}: no section headed `{command}`")
            continue
        missing += [f"{command} {n}" for n in documented_names(child) if not named(n, body)]
    return missing


# -- the tests ------------------------------------------------------------------------------


def test_every_command_and_option_is_in_cli_md():
    missing = undocumented(build_parser(), CLI_DOC.read_text(encoding="utf-8"))
    assert not missing, "docs/cli.md does not document:\n  " + "\n  ".join(missing)


def test_the_walk_reaches_nested_commands_and_the_newer_options():
    """The walk itself: a check that saw no sub-command would pass on any document."""
    parser = build_parser()
    found = {path: documented_names(child) for path, child in commands(parser)}
    for path in [("teach", "add"), ("teach", "check"), ("data", "split"), ("stats",)]:
        assert path in found
    assert "--profile" in found[("classify",)]
    assert {"--events", "--mqtt", "--metrics-port"} <= set(found[("app",)])
    assert {"--events", "--no-events", "--save-crops"} <= set(found[("annotate",)])
    assert "field" in found[("evaluate",)]
    assert "--self-test" in documented_names(parser)


def test_an_undocumented_option_command_or_choice_fails():
    """Adding to the parser without documenting it is caught, where it is added."""
    text = CLI_DOC.read_text(encoding="utf-8")
    parser = build_parser()
    by_path = dict(commands(parser))
    by_path[("cameras",)].add_argument("--not-in-the-docs", action="store_true")
    by_path[("teach", "list")].add_argument("--also-not-in-the-docs", action="store_true")
    parser.add_argument("--nor-this-one", action="store_true")
    _sub_actions(by_path[("teach",)])[0].add_parser("undocumented-action")
    by_path[("stats",)]._option_string_actions["--by"].choices = ("hour", "day", "fortnight")
    missing = undocumented(parser, text)
    assert "waste-vision cameras --not-in-the-docs" in missing
    assert "waste-vision teach list --also-not-in-the-docs" in missing
    assert f"waste-vision --nor-this-one (in {GLOBAL_SECTION})" in missing
    assert any("waste-vision teach undocumented-action: no section" in m for m in missing)
    assert "waste-vision stats fortnight" in missing
    # documented elsewhere is not enough: --json is in teach list's section, not cameras'
    by_path[("cameras",)].add_argument("--json", action="store_true")
    assert "waste-vision cameras --json" in undocumented(parser, text)


def test_readme_is_at_most_10_kb():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; the limit is 10 KB"


_INLINE_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[(?!\^)[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)


def relative_links(text: str) -> list[str]:
    """Link targets that are paths (no scheme, not a bare #anchor), without their #anchor;
    links in code (fenced blocks and `spans`) are not links."""
    prose = re.sub(r"`[^`\n]*`", "", _strip_code_blocks(text))
    targets = [
        m.group(1)
        for pattern in (_INLINE_LINK, _REFERENCE_LINK, _HTML_LINK)
        for m in pattern.finditer(prose)
    ]
    paths = []
    for target in targets:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "//")):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path:
            paths.append(path)
    return paths


def test_relative_links_find_their_link_parser():
    text = (
        '[a](docs/cli.md) ![b](shot.png "title") [c](https://x.org/y.md) [d](#here) '
        '[e](fleet.md#in-the-window) `[f](in-code.md)` <img src="pic.png">\n[g]: ref.md\n'
        "```\n[h](in-a-block.md)\n```\n"
    )
    assert relative_links(text) == ["docs/cli.md", "shot.png", "fleet.md", "ref.md", "pic.png"]


MARKDOWN = [README, *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_relative_links_point_to_files_that_exist(doc: Path):
    links = relative_links(doc.read_text(encoding="utf-8"))
    broken = [link for link in links if not (doc.parent / link).exists()]
    assert not broken, f"{doc.relative_to(ROOT)} links to missing files: {broken}"
