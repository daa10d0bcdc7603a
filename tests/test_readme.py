"""The documentation's examples run as written (issues 15 and 24): every ```bash block preceded by
``<!-- runnable -->`` in README.md and in the guides of docs/ is run with bash in one scratch copy of the
shipped samples (a fresh clone's imgs/, masks/, masks_inverted/, train_data/, with empty outputs/ and weights/),
with the venv's tools on PATH, exactly as a user pastes it except for the speed substitutions below.

**Order**: README.md first, then the guides in :data:`GUIDES` order, then any other docs/*.md alphabetically;
within a file, top to bottom. A later block may use what an earlier block *of the same file* wrote (a guide's
examples build on each other, as a reader runs them); no file relies on another file's blocks, so
``pytest tests/test_readme.py -k restoring`` runs one guide alone (the ids are ``<file>:<n> <first line>``).

Speed substitutions (they keep each command's shape and code path):

- a hub model id (which needs the network) becomes a saved ``tiny``-preset pipeline of the same
  architecture family (random weights: what is tested is that the command works, not the pixels);
- ``--steps``/``--max_steps`` N above 10 become 2-4 (more for larger N), inference and ``eval`` without
  ``--steps`` get ``--steps 2``, and ``--save_every``/``--validate_every``/``--stop_after`` N above 3 become 1;
- ``--size`` N above 128 becomes 128 (``--area auto`` then still exercises crops on the 320-px samples);
- ``inpaint-kit`` runs in a fork of one warm process that imported torch and diffusers once
  (tests/command_server.py); ``python ...`` and ``torchrun ...`` lines start real processes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from command_server import stop, write_shim

REPO = Path(__file__).resolve().parents[1]
MARK = "<!-- runnable -->"
SAMPLES = ("imgs", "masks", "masks_inverted", "train_data")
# The guides in the order their runnable blocks run (after README.md); docs/*.md not listed run after these,
# alphabetically. Each guide's own blocks are self-sufficient.
GUIDES = ("restoring", "models", "archive", "outpainting", "ui", "finetuning", "training", "defectfill",
          "merging", "engines", "flags", "development", "benchmarks")
HUB_SD2 = ("stabilityai/stable-diffusion-2-inpainting", "sd2-community/stable-diffusion-2-inpainting")
HUB_SD15 = ("stable-diffusion-v1-5/stable-diffusion-v1-5", "runwayml/stable-diffusion-v1-5",
            "stable-diffusion-v1-5/stable-diffusion-inpainting", "runwayml/stable-diffusion-inpainting")


def documents() -> list[Path]:
    """README.md, then docs/<guide>.md in GUIDES order, then the other docs/*.md alphabetically."""
    listed = [REPO / "docs" / f"{g}.md" for g in GUIDES]
    others = sorted(p for p in (REPO / "docs").glob("*.md") if p not in listed)
    return [REPO / "README.md", *[p for p in listed if p.exists()], *others]


def runnable_blocks(text: str) -> list[str]:
    """The bodies of the ```bash blocks that follow a ``<!-- runnable -->`` line (blank lines between allowed)."""
    blocks = re.findall(rf"{re.escape(MARK)}\s*\n```(?:bash|sh|console)\n(.*?)\n```", text, re.S)
    return [b.strip() for b in blocks]


INFERENCE = re.compile(r"(inpaint-kit|inpaint_kit)\s+(infer|outpaint|eval)\s|scripts/(infer_inpaint|outpaint)\.py\s")


def speed_up(block: str, tiny: Path) -> str:
    for hub in HUB_SD2 + HUB_SD15:
        block = block.replace(hub, str(tiny))
    # N <= 10 stays; larger N becomes 2-4 keeping the docs' order (a resumed run asked for more gets more)
    block = re.sub(r"(--(?:steps|max_steps))(\s+|=)(\d+)",
                   lambda m: f"{m[1]}{m[2]}{m[3] if int(m[3]) <= 10 else max(2, min(4, int(m[3]) // 10000 + 1))}", block)
    block = re.sub(r"(--(?:save_every|validate_every|stop_after))(\s+|=)(\d+)",
                   lambda m: f"{m[1]}{m[2]}{m[3] if int(m[3]) <= 3 else 1}", block)
    block = re.sub(r"(--size)(\s+|=)(\d+)", lambda m: f"{m[1]}{m[2]}{min(int(m[3]), 128)}", block)
    lines = []
    for line in block.replace("\\\n", " ").splitlines():  # inference without --steps: 2 steps, not 30
        code, _, comment = line.partition(" #")
        if INFERENCE.search(code) and "--steps" not in code:
            code += " --steps 2"
        lines.append(code + (" #" + comment if comment else ""))
    return "\n".join(lines)


BLOCKS = [(doc.relative_to(REPO).as_posix(), i, block) for doc in documents()
          for i, block in enumerate(runnable_blocks(doc.read_text(encoding="utf-8")))]


def test_the_docs_mark_their_examples_runnable():
    per_file = {name: sum(1 for n, *_ in BLOCKS if n == name) for name, *_ in BLOCKS}
    assert per_file.get("README.md", 0) >= 2, "the README's tour lost its <!-- runnable --> marks"
    for guide in ("restoring", "models", "finetuning", "training", "outpainting", "defectfill", "archive", "merging"):
        assert per_file.get(f"docs/{guide}.md", 0) >= 1, f"docs/{guide}.md has no runnable example"
    assert runnable_blocks("<!-- runnable -->\n```bash\necho hi\n```\n```bash\nnot this\n```") == ["echo hi"]


def test_every_listed_guide_exists():
    missing = [g for g in GUIDES if not (REPO / "docs" / f"{g}.md").exists()]
    assert not missing, f"GUIDES names docs that do not exist: {missing}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch folder laid out like a fresh clone's samples (scripts and weights linked, not copied)."""
    root = tmp_path_factory.mktemp("readme")
    for name in SAMPLES:
        shutil.copytree(REPO / name, root / name)
    for name in ("scripts", "bench"):
        os.symlink(REPO / name, root / name)
    (root / "outputs").mkdir()
    (root / "weights").mkdir()  # trained outputs of the examples land here, not in the repository
    return root


@pytest.fixture(scope="module")
def command_path(tmp_path_factory):
    """A PATH whose ``inpaint-kit`` runs in a warm server (tests/command_server.py), then the venv's tools."""
    folder = tmp_path_factory.mktemp("warm")
    sock = str(folder / "server.sock")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = open(folder / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("command_server.py")), "serve", sock],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not Path(sock + ".ready").exists():
        assert server.poll() is None and time.monotonic() < deadline, (folder / "server.log").read_text()[-3000:]
        time.sleep(0.2)
    write_shim(folder, sock)
    yield f"{folder}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    stop(sock)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.mark.parametrize("name, index, block", BLOCKS,
                         ids=[f"{name.removeprefix('docs/')}:{i} {b.splitlines()[0][:50]}" for name, i, b in BLOCKS])
def test_documented_example_runs(name, index, block, workdir, command_path, tiny_model_dir):
    script = speed_up(block, tiny_model_dir)
    env = {**os.environ, "PATH": command_path, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (f"{name} example {index} failed:\n{script}\n--- stdout\n{done.stdout[-2000:]}\n"
                                  f"--- stderr\n{done.stderr[-3000:]}")
