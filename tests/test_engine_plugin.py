"""An engine from outside the package, registered through the entry-point group ``inpaint_kit.engines``: the
toy engine of docs/engines.md, installed as a distribution (a ``.dist-info`` with ``entry_points.txt`` on
``PYTHONPATH``), runs ``infer --model toy`` end to end in a fresh process; a broken plugin is skipped with a
warning and inpaint-kit keeps working."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.images import load_image, read_metadata
from inpaint_kit.inpaint import load_pair

ROOT = Path(__file__).resolve().parent.parent
IMAGE, MASK = ROOT / "imgs" / "chelsea.png", ROOT / "masks" / "chelsea.png"


def toy_source() -> str:
    """The toy engine module exactly as docs/engines.md shows it."""
    doc = (ROOT / "docs" / "engines.md").read_text()
    block = re.search(r"<!-- tests/test_engine_plugin.py: toy_engine.py -->\n```python\n(.*?)```", doc, re.S)
    assert block, "docs/engines.md lost its toy engine example"
    return block.group(1)


def install(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
    """A minimal installed distribution in ``site``: its modules and a ``.dist-info`` naming its entry points."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[inpaint_kit.engines]\n{lines}")
    return site


def inpaint_kit(*args, sites=()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, sites))}
    return subprocess.run([sys.executable, "-m", "inpaint_kit", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return install(tmp_path_factory.mktemp("toy"), "toy_engine", {"toy_engine": toy_source()},
                   {"toy": "toy_engine:ENGINE"})


def test_infer_runs_an_engine_installed_by_another_package(toy, tmp_path):
    out = tmp_path / "chelsea_collage.png"
    run = inpaint_kit("infer", "--model", "toy", "--toy_level", "7", "--image", IMAGE, "--mask", MASK,
                      "--output", out, "--size", "128", "--rows", "2", "--seed", "3", "--save_rows", sites=[toy])
    assert run.returncode == 0, run.stderr
    image, mask = load_pair(IMAGE, MASK, "black")
    for i, seed in enumerate((3, 4)):
        row = load_image(tmp_path / f"chelsea_row{i}_seed{seed}.png")
        assert row.shape == image.shape
        assert np.array_equal(row[~mask], image[~mask])  # outside the mask: the input, bit for bit
        assert np.median(row[mask]) == 7  # the hole: the toy's grey (its edges resampled from 128 px)
    meta = read_metadata(out)
    assert meta["engine"] == "toy" and meta["toy_level"] == 7 and meta["request"]["toy"] == {"toy_level": 7}
    assert "prompt" not in meta and "guidance" not in meta  # the toy reads no prompt
    assert "Sampler: Toy" in Image.open(out).info["parameters"]  # the A1111 infotext names it too


def test_the_plugins_flags_are_its_own(toy):
    help_text = inpaint_kit("infer", "--help", sites=[toy]).stdout
    assert "--toy_level" in help_text and "the toy engine only" in help_text
    wrong = inpaint_kit("infer", "--model", "builtin", "--toy_level", "9", "--image", IMAGE, "--mask", MASK, sites=[toy])
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert "--toy_level 9 does not apply to --model builtin" in wrong.stderr and "the toy engine" in wrong.stderr
    bad = inpaint_kit("infer", "--model", "toy", "--toy_level", "300", "--image", IMAGE, "--mask", MASK, sites=[toy])
    assert bad.returncode == 2 and "--toy_level 300 must be 0..255" in bad.stderr
    prompt = inpaint_kit("infer", "--model", "toy", "--prompt", "a cat", "--image", IMAGE, "--mask", MASK, sites=[toy])
    assert prompt.returncode == 2 and "--prompt a cat does not apply to --model toy (the toy engine)" in prompt.stderr


def test_a_broken_plugin_is_skipped_with_a_warning(toy, tmp_path):
    source = toy_source()
    broken = install(tmp_path / "broken", "broken_engines", {
        "misnamed": source.replace('EngineSpec("toy"', 'EngineSpec("other"'),
        "unprefixed": source.replace("toy_level", "level").replace('EngineSpec("toy"', 'EngineSpec("toy2"'),
        "again": source,
    }, {"gone": "no_such_module:ENGINE", "wrongname": "misnamed:ENGINE", "toy2": "unprefixed:ENGINE",
        "toy": "again:ENGINE"})
    run = inpaint_kit("infer", "--help", sites=[toy, broken])
    assert run.returncode == 0 and "--toy_level" in run.stdout
    assert "engine gone (no_such_module:ENGINE, entry point inpaint_kit.engines) cannot be imported" in run.stderr
    assert "its EngineSpec is named 'other'" in run.stderr
    assert "its flags must start with toy2_ (got --level)" in run.stderr
    assert "the engine name 'toy' is taken" in run.stderr  # a second package claiming the name
