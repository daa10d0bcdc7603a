"""The flag tables of the docs against the parsers of every command, so the two cannot drift.

docs/flags.md's "Shared flags" table: each flag a row names exists (shown in ``--help``) in exactly the commands
the row lists, with the default it states, and its old spellings are hidden aliases there; every flag shown by
two or more commands has a row. The guides' own tables (a ``<!-- flags: COMMAND -->`` line right before a table
whose first column names flags) are checked for that command: every flag exists and is shown in ``--help``,
and a ``default`` column, where it states a value, states the parser's.

Default cells: ``VALUE`` for every listed command, then ``cmd[, cmd]: VALUE`` exceptions, separated by ``; ``.
A VALUE is a backquoted literal (the default as ``--help`` shows it), ``none`` (not set / empty), ``off`` (a
switch), ``required``, or ``per command`` (the commands' own defaults, which must then differ); a row of
several flags may give one VALUE per flag, separated by ``, ``. Text in parentheses is a comment."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from inpaint_kit.cli import COMMANDS, build_parser

REPO = Path(__file__).resolve().parent.parent
FLAGS_DOC = REPO / "docs" / "flags.md"
TRAINERS = tuple(c for c in COMMANDS if c.startswith("train-"))


def parsers() -> dict[str, argparse.ArgumentParser]:
    return {name: build_parser(name) for name in COMMANDS}


def shown_default(parser: argparse.ArgumentParser, action: argparse.Action):
    """What a user gets without the flag: ``"off"`` for a switch, ``"required"``, else the default
    (trainers' flags have none in argparse: their help states the config's, ``(default: X)``)."""
    if action.nargs == 0:
        return "off"
    if action.required or action.dest in (parser.get_default("_required") or ()) or "(required)" in (action.help or ""):
        return "required"
    if action.default is argparse.SUPPRESS:
        stated = re.search(r"\(default: ([^)]*)\)", action.help or "")
        return stated.group(1) if stated else None
    if isinstance(action.default, (list, tuple)):
        return " ".join(map(str, action.default))
    return action.default


def flags_of(parser) -> dict[str, tuple[argparse.Action, bool]]:
    """Every option string -> (its action, shown in --help)."""
    return {o: (a, a.help != argparse.SUPPRESS) for a in parser._actions for o in a.option_strings
            if o not in ("-h", "--help")}


def commands_in(cell: str) -> list[str]:
    names = []
    for name in re.sub(r"\([^)]*\)", "", cell).replace("`", "").split(","):
        name = name.strip()
        if name:
            names += list(TRAINERS) if name == "train-*" else [name]
    unknown = set(names) - set(COMMANDS)
    assert not unknown, f"docs/flags.md's Shared flags table names unknown commands {unknown}"
    return names


def values_in(text: str, n: int) -> list[str]:
    """One value per flag of the row (a single value stands for all)."""
    text = re.sub(r"\([^)]*\)", "", text).strip()
    values = re.findall(r"`[^`]*`|none|off|required|per command", text)
    assert values and len(values) in (1, n), f"cannot read the default {text!r} for {n} flag(s)"
    return values * n if len(values) == 1 else values


def rows():
    """``(flags, defaults by command, commands, old spellings)`` per row of the table."""
    text = FLAGS_DOC.read_text(encoding="utf-8")
    section = text[text.index("## Shared flags"):]
    end = section.find("\n## ", 3)
    section = section if end < 0 else section[:end]
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 5 or cells[0] in ("flag", "---"):
            continue
        flags = re.findall(r"`(--[a-z_]+)", cells[0])
        commands = commands_in(cells[3])
        defaults = {}
        for part in cells[2].split("; "):
            named = re.match(r"^((?:[a-z*-]+)(?:, [a-z*-]+)*): (.*)$", part)
            if named:
                for c in commands_in(named.group(1)):
                    defaults[c] = values_in(named.group(2), len(flags))
            else:
                for c in commands:
                    defaults.setdefault(c, values_in(part, len(flags)))
        olds = []
        for old, where in re.findall(r"`(--[a-z_]+)`(?: \(([^)]*)\))?", cells[4]):
            olds.append((old, commands_in(where) if where else commands))
        yield flags, defaults, commands, olds


ROWS = list(rows())


def test_the_table_is_read():
    assert len(ROWS) > 20 and any("--model" in flags for flags, *_ in ROWS)


@pytest.mark.parametrize("flags, defaults, commands, olds", ROWS, ids=[" ".join(r[0]) for r in ROWS])
def test_each_row_matches_the_parsers(flags, defaults, commands, olds):
    ps = parsers()
    for i, flag in enumerate(flags):
        seen = {}
        for command in commands:
            found = flags_of(ps[command]).get(flag)
            assert found and found[1], f"{flag} is not an option of {command} (docs/flags.md's Shared flags table)"
            action = found[0]
            default, stated = shown_default(ps[command], action), defaults[command][i]
            seen[command] = default
            if stated == "per command":
                continue
            if stated == "none":
                assert default in (None, ""), f"{command} {flag}: default {default!r}, the table says none"
            elif stated in ("off", "required"):
                assert default == stated, f"{command} {flag}: {default!r}, the table says {stated}"
            else:
                assert str(default) == stated.strip("`"), f"{command} {flag}: default {default!r}, the table says {stated}"
        per = [c for c in commands if defaults[c][i] == "per command"]
        if len(per) > 1:
            assert len({str(seen[c]) for c in per}) > 1, f"{flag}: the same default in {per}; state it"
    for old, where in olds:
        for command in where:
            found = flags_of(ps[command]).get(old)
            assert found and not found[1], f"{old} is not a hidden alias in {command}"
            assert any(found[0].dest == flags_of(ps[command])[f][0].dest for f in flags), \
                f"{old} in {command} is not an old spelling of {', '.join(flags)}"


def test_every_shared_flag_has_rows_naming_exactly_its_commands():
    ps = parsers()
    shown: dict[str, set[str]] = {}
    for command, parser in ps.items():
        for flag, (_, visible) in flags_of(parser).items():
            if visible:
                shown.setdefault(flag, set()).add(command)
    listed: dict[str, set[str]] = {}
    for flags, _, commands, _ in ROWS:
        for flag in flags:
            listed.setdefault(flag, set()).update(commands)
    for flag, commands in sorted(shown.items()):
        if len(commands) >= 2:
            assert flag in listed, f"{flag} ({', '.join(sorted(commands))}) has no row in docs/flags.md's Shared flags table"
        if flag in listed:
            assert listed[flag] == commands, (f"docs/flags.md's Shared flags table lists {flag} for {sorted(listed[flag])}; "
                                              f"the commands that have it: {sorted(commands)}")


# --- the guides' own flag tables --------------------------------------------------------------------------------
def guide_tables():
    """``(doc, command, flags, stated defaults or None)`` per row of every ``<!-- flags: COMMAND -->`` table."""
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"<!-- flags: ([a-z-]+) -->\s*\n((?:\|.*\n?)+)", text):
            command, lines = m.group(1), m.group(2).strip().splitlines()
            header = [c.strip() for c in lines[0].strip().strip("|").split("|")]
            column = header.index("default") if "default" in header else None
            for line in lines[2:]:
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
                flags = re.findall(r"`(--[a-z_]+)", cells[0])
                yield doc.relative_to(REPO).as_posix(), command, flags, None if column is None else cells[column]


GUIDE_ROWS = list(guide_tables())


def stated_values(cell: str, n: int) -> list[str | None]:
    """One stated default per flag (a single value stands for all); None where the cell describes instead of
    stating a value (``the model's``)."""
    parts = [p.strip() for p in re.sub(r"\([^)]*\)", "", cell).split(", ")]
    assert len(parts) in (1, n), f"cannot read {n} default(s) from {cell!r}"
    parts = parts * n if len(parts) == 1 else parts
    return [p if re.fullmatch(r"`[^`]*`|none|empty|off|required|[-+]?\d[\d.e+-]*(?: [-+]?\d[\d.e+-]*)*", p) else None
            for p in parts]


def test_the_guides_have_flag_tables():
    assert {command for _, command, _, _ in GUIDE_ROWS} >= {"infer", "outpaint", "train-lora", "train-controlnet"}


@pytest.mark.parametrize("doc, command, flags, cell", GUIDE_ROWS,
                         ids=[f"{d}:{c}:{' '.join(f)}" for d, c, f, _ in GUIDE_ROWS])
def test_guide_flag_tables_match_the_parsers(doc, command, flags, cell):
    assert command in COMMANDS, f"{doc}: flags table of unknown command {command}"
    assert flags, f"{doc}: a row of the {command} flags table names no flag"
    parser = build_parser(command)
    known = flags_of(parser)
    for i, flag in enumerate(flags):
        assert flag in known and known[flag][1], f"{doc}: {flag} is not an option of {command} (shown in --help)"
        if cell is None:
            continue
        stated, default = stated_values(cell, len(flags))[i], shown_default(parser, known[flag][0])
        if stated is None:
            continue
        if stated in ("none", "empty"):
            assert default in (None, ""), f"{doc}: {command} {flag} defaults to {default!r}, the table says {stated}"
        elif stated in ("off", "required"):
            assert default == stated, f"{doc}: {command} {flag} is {default!r}, the table says {stated}"
        else:
            assert str(default) == stated.strip("`"), f"{doc}: {command} {flag} defaults to {default!r}, the table says {stated}"
