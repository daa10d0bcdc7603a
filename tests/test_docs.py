"""The docs keep their promises about themselves (issue 24): every relative link and picture of README.md and
docs/*.md resolves (anchors too, as GitHub slugs headings), every test a doc names exists, every ``--flag`` a
doc mentions is a flag of some command (or of a tool the docs launch), every guide is one click from the
README, every picture is small, and the README stays a front page."""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

from inpaint_kit.cli import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
IDS = [d.relative_to(REPO).as_posix() for d in DOCS]

# flags of the tools the docs launch or mention beside inpaint-kit (torchrun, accelerate launch, hf download,
# tensorboard), and of the example plugin engine written out in docs/engines.md
OTHER_TOOLS = {"--nproc_per_node", "--nnodes", "--node_rank", "--master_addr", "--master_port", "--multi_gpu",
               "--num_processes", "--num_machines", "--machine_rank", "--main_process_ip", "--main_process_port",
               "--cpu", "--exclude", "--local-dir", "--logdir", "--help"}
EXAMPLES = {"--toy_level": "docs/engines.md's toy plugin engine",
            "--thin_width": "docs/engines.md: how a thin-damage filler would declare its options"}


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links inside them are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces
    to hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def links(path: Path) -> list[str]:
    """Targets of markdown links and images, and of HTML src/href attributes, in the prose of ``path``."""
    text = prose(path.read_text(encoding="utf-8"))
    found = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    found += re.findall(r"(?:src|href)=\"([^\"]+)\"", text)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_relative_link_and_picture_resolves(doc):
    broken = []
    for target in links(doc):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ... are not checked (no network)
            continue
        file, _, anchor = target.partition("#")
        where = (doc.parent / file).resolve() if file else doc
        if not where.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target} (no heading with that anchor in {where.relative_to(REPO)})")
    assert not broken, f"{doc.relative_to(REPO)}: broken links: {broken}"


PICTURE_BYTES = 300 * 1024  # issue 24: "kept small; PNG/JPEG under a few hundred KB each"


def test_every_picture_the_docs_show_is_small():
    shown = {(doc.parent / t.partition("#")[0]).resolve() for doc in DOCS for t in links(doc)
             if not re.match(r"[a-z]+:", t) and t.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".webp"))}
    assert len(shown) >= 10, f"the docs show only {len(shown)} pictures"
    large = sorted(f"{p.relative_to(REPO)} ({p.stat().st_size // 1024} KiB)" for p in shown
                   if p.exists() and p.stat().st_size > PICTURE_BYTES)
    assert not large, (f"pictures over {PICTURE_BYTES // 1024} KiB: {large}; rebuild them smaller "
                       "(scripts/make_doc_images.py: JPEG for photographs, a palette PNG for screenshots)")


def test_the_link_checker_finds_what_is_broken(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("# Title: `x` and --y\n[ok](a.md#title-x-and---y) [bad](missing.png) `[not](a link)`\n"
                   "```\n[nor](this)\n```\n![pic](b.png)\n")
    assert links(doc) == ["a.md#title-x-and---y", "missing.png", "b.png"]
    assert "title-x-and---y" in anchors(doc)


@lru_cache(maxsize=None)
def defined_tests() -> dict[str, set[str]]:
    """Test file name -> the test functions it defines (module level and in classes)."""
    out = {}
    for path in (REPO / "tests").glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out[path.name] = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                          and n.name.startswith("test_")}
    return out


def named_tests(text: str) -> list[tuple[str | None, str | None]]:
    """``(file, function)`` pairs a doc names: ``tests/test_x.py``, ``test_x.py::test_y`` (a ``*`` in the name
    is a wildcard), and backquoted bare ``test_y`` (file None)."""
    out = []
    for file, name in re.findall(r"(?:tests/)?(test_\w+\.py)(?:::(test_[\w*]+))?", text):
        out.append((file, name or None))
    for name in re.findall(r"`(test_[\w*]+)(?:\[[^\]`]*\])?`", text):
        out.append((None, name))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_test_a_doc_names_exists(doc):
    tests = defined_tests()
    missing = []
    for file, name in named_tests(doc.read_text(encoding="utf-8")):
        if file is not None and file not in tests:
            missing.append(f"tests/{file}")
            continue
        if name is None:
            continue
        pattern = re.compile(name.replace("*", r"\w*") + r"$")
        pool = tests[file] if file else set().union(*tests.values())
        if not any(pattern.match(t) for t in pool):
            missing.append(f"{file or 'tests/*'}::{name}")
    assert not missing, f"{doc.relative_to(REPO)} names tests that do not exist: {missing}"


def test_the_test_name_reader_reads_every_form():
    text = ("(`tests/test_api.py::test_a`, `test_merge.py::test_*_one_line_error`, `tests/test_shard.py`; "
            "`test_b`, `test_c[x]`)")
    assert named_tests(text) == [("test_api.py", "test_a"), ("test_merge.py", "test_*_one_line_error"),
                                 ("test_shard.py", None), (None, "test_b"), (None, "test_c")]


@lru_cache(maxsize=None)
def known_flags() -> set[str]:
    """Every option string of every command (hidden aliases included), of the bench and scripts front-ends,
    and of the other tools the docs launch."""
    flags = set(OTHER_TOOLS) | set(EXAMPLES)
    for name in COMMANDS:
        flags |= {o for a in build_parser(name)._actions for o in a.option_strings}
    for path in [*(REPO / "bench").glob("*.py"), *(REPO / "scripts").glob("*.py")]:
        flags |= set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", path.read_text(encoding="utf-8")))
    return flags


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_flag_a_doc_mentions_exists(doc):
    text = doc.read_text(encoding="utf-8")
    unknown = sorted({f for f in re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]*[a-z0-9])", text)} - known_flags())
    assert not unknown, f"{doc.relative_to(REPO)} mentions flags no command has: {unknown}"


def test_every_guide_is_one_click_from_the_readme():
    linked = {Path(t.partition("#")[0]).name for t in links(REPO / "README.md") if t.startswith("docs/")}
    guides = {p.name for p in (REPO / "docs").glob("*.md")}
    assert guides <= linked, f"guides the README does not link: {sorted(guides - linked)}"


def test_the_readme_is_a_front_page():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines < 200, f"README.md has {lines} lines: move detail into a guide in docs/ (issue 24)"
