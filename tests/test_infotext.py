"""Provenance that real tools read: A1111 infotext parsed by sd-parsers, one seed key, input names."""

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.images import read_metadata, save_png
from inpaint_kit.infotext import a1111, quote

sd_parsers = pytest.importorskip("sd_parsers", reason="sd-parsers is a dev dependency (pip install -e .[dev])")


def parse(path):
    info = sd_parsers.ParserManager().parse(str(path))
    assert info is not None, f"sd-parsers found no metadata in {path}"
    (sampler,) = info.samplers
    return info, sampler


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    save_png(tmp_path / "wall.png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    mask = np.full((48, 64), 255, np.uint8)
    mask[10:30, 20:40] = 0
    Image.fromarray(mask, "L").save(tmp_path / "wall_mask.png")
    return tmp_path


def test_sd_parsers_reads_prompt_steps_sampler_cfg_seed_size_and_model(files, tiny_model_dir):
    out = files / "out" / "wall_collage.png"
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(files / "wall.png"), "--mask",
                 str(files / "wall_mask.png"), "--output", str(out), "--rows", "2", "--seed", "42", "--steps", "3",
                 "--guidance", "6.5", "--prompt", "ancient mural, fresco", "--negative_prompt", "blurry",
                 "--scheduler", "dpmpp_2m", "--size", "64", "--save_rows"]) == 0
    info, sampler = parse(out)
    assert info.full_prompt == "ancient mural, fresco" and info.full_negative_prompt == "blurry"
    assert sampler.name == "DPM++ 2M" and sampler.model.name == tiny_model_dir.name
    p = sampler.parameters
    assert p["steps"] == "3" and p["cfg_scale"] == "6.5" and p["seed"] == "42"
    assert info.metadata["Size"] == "64x48" and info.metadata["Seeds"] == "42 43"
    row = out.parent / "wall_row1_seed43.png"
    _, row_sampler = parse(row)
    assert row_sampler.parameters["seed"] == "43"
    meta = read_metadata(row)
    assert meta["seeds"] == [43] and "seed" not in meta and meta["random_seeds"] is False  # one seed key
    assert meta["image"] == str(files / "wall.png") and meta["mask"] == str(files / "wall_mask.png")


def test_builtin_outputs_name_their_sampler_and_skip_cfg(files, tmp_path):
    out = tmp_path / "b.png"
    assert main(["infer", "--model", "builtin", "--image", str(files / "wall.png"), "--mask", str(files / "wall_mask.png"),
                 "--output", str(out), "--rows", "1", "--steps", "2", "--size", "64"]) == 0
    info, sampler = parse(out)
    assert sampler.name == "DDPM" and sampler.model.name == "builtin" and "cfg_scale" not in sampler.parameters
    assert read_metadata(out)["random_seeds"] is True


def test_values_with_separators_are_quoted_as_a1111_does():
    assert quote("a, b: c") == '"a, b: c"' and quote("plain") == "plain"
    text = a1111({"prompt": "p", "steps": 2, "seeds": [1], "model": "C:/models/x.safetensors", "guidance": 5})
    assert text.splitlines()[0] == "p" and "Model: x" in text and "Seed: 1" in text
