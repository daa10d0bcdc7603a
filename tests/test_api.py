"""The Python API (inpaint_kit.api): its documented example runs, and it gives the CLI's pixels."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import inpaint_kit
from inpaint_kit import api
from inpaint_kit.cli import main
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.images import load_image, read_metadata

REPO = Path(__file__).resolve().parents[1]


def test_the_docstring_example_runs_as_written(tmp_path, monkeypatch):
    """The module docstring is the API's documentation: run its code block verbatim on the shipped samples."""
    block = re.search(r"\n\n((?:    .*\n|\n)+?)\n\S", api.__doc__).group(1)
    code = "\n".join(line[4:] for line in block.splitlines())
    assert "restore(" in code and "load_engine(" in code
    for d in ("imgs", "masks"):
        os.symlink(REPO / d, tmp_path / d)
    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "inpaint_kit.api docstring", "exec"), {})
    row = Image.open(tmp_path / "outputs/chelsea_api.png")
    assert row.size == Image.open(REPO / "imgs/chelsea.png").size
    assert "Seed: 1," in row.text["parameters"]
    assert (tmp_path / "outputs/chelsea_collage.png").is_file()


def test_package_exports_the_api_lazily():
    assert inpaint_kit.restore is api.restore and inpaint_kit.InferConfig is api.InferConfig
    with pytest.raises(AttributeError):
        inpaint_kit.nothing_here


def test_api_gives_the_cli_pixels_and_metadata(tmp_path, tiny_model_dir):
    img, mask = REPO / "imgs/rocket.png", REPO / "masks/rocket.png"
    main(["infer", "--model", str(tiny_model_dir), "--image", str(img), "--mask", str(mask), "--size", "64",
          "--steps", "2", "--rows", "2", "--seed", "5", "--save_rows", "--output", str(tmp_path / "cli_collage.png")])
    cfg = api.InferConfig(model=str(tiny_model_dir), size=64, steps=2, rows=2, seed=5)
    engine = api.load_engine(cfg)
    # PIL inputs (the image as a palette image: modes are converted as for files)
    result = api.restore(Image.open(img), Image.open(mask), cfg, engine=engine)
    assert result.seeds == [5, 6]
    for i, seed in enumerate(result.seeds):
        cli_row = load_image(tmp_path / f"rocket_row{i}_seed{seed}.png")
        assert np.array_equal(np.asarray(result.images[i]), cli_row)
        assert f"Seed: {seed}," in result.images[i].info["parameters"]
    assert result.metadata["model"] == read_metadata(tmp_path / "cli_collage.png")["model"]
    # arrays: a bool mask (True = repaint) gives the same pixels
    from inpaint_kit.masks import to_repair
    from inpaint_kit.images import load_grey

    again = api.restore(load_image(img), to_repair(load_grey(mask), "black"), cfg, engine=engine)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(again.images, result.images))
    # save writes what infer writes
    written = result.save(tmp_path / "api", "rocket")
    assert np.array_equal(load_image(written[0]), load_image(tmp_path / "cli_collage.png"))


def test_outside_the_mask_is_unchanged_and_size_kept_for_any_pil_mode(tiny_model_dir):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), np.uint8)
    mask = np.zeros((37, 53), bool)
    mask[10:20, 5:30] = True
    palette = Image.fromarray(rgb).convert("P")
    expected = np.asarray(palette.convert("RGB"))
    out = api.restore(palette, mask, model=str(tiny_model_dir), size=64, steps=2, rows=1, seed=3)
    got = np.asarray(out.images[0])
    assert got.shape == (37, 53, 3)
    assert np.array_equal(got[~mask], expected[~mask])
    assert not np.array_equal(got[mask], expected[mask])


def test_bad_inputs_are_clear_errors():
    with pytest.raises(InpaintKitError, match="uint8"):
        api.to_rgb(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InpaintKitError, match="bool"):
        api.to_mask(np.zeros((4, 4), np.float32), "black", (4, 4))
    with pytest.raises(TypeError, match="unknown InferConfig field"):
        api.restore(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool), sizee=64)
    with pytest.raises(InpaintKitError, match="--rows 0"):
        api.restore(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool), rows=0)


def test_the_readme_shows_the_same_example():
    readme = (REPO / "README.md").read_text()
    shown = re.search(r"## Python API\n.*?```python\n(.*?)```", readme, re.S).group(1)
    block = re.search(r"\n\n((?:    .*\n|\n)+?)\n\S", api.__doc__).group(1)
    assert shown.strip() == "\n".join(line[4:] for line in block.splitlines()).strip()
