"""Engines hand back float fills (float32 in [0, 1]), quantised once, to the target depth: a 16-bit master's
fill has 16-bit precision (no 8-bit steps), 8-bit results round exactly as the engines did before, and an
engine of another package that still returns uint8 keeps working (its fills taken as v / 255)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.engine import Canvas, RowsMixin, Sampling, check_items, load_engine, to_float, to_uint8
from inpaint_kit.geometry import Region, compose_values
from inpaint_kit.inpaint import InferConfig, inpaint_array

H, W = 64, 96
BOX = (16, 24, 48, 72)  # 32 x 48 pixels repaired


def _master16(path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:H, 0:W]
    px = np.stack([(x / W + k * 0.3 + y / H * 0.2) % 1.0 for k in range(3)], -1) * 60000 + rng.integers(0, 900, (H, W, 3))
    tifffile.imwrite(path, px.astype(np.uint16), photometric="rgb", metadata=None)
    return px.astype(np.uint16)


@pytest.mark.parametrize("model", ["tiny_sd", "builtin"])
def test_a_16bit_master_gets_a_fill_with_16bit_precision(model, tmp_path, tiny_model_dir):
    stored = _master16(tmp_path / "a.tif")
    m = np.full((H, W), 255, np.uint8)
    t, l, b, r = BOX
    m[t:b, l:r] = 0
    Image.fromarray(m).save(tmp_path / "a_mask.png")
    repair = m == 0
    name = str(tiny_model_dir) if model == "tiny_sd" else "builtin"
    assert main(["infer", "--model", name, "--image", str(tmp_path / "a.tif"), "--mask", str(tmp_path / "a_mask.png"),
                 "--size", "96", "--steps", "2", "--rows", "1", "--seed", "3", "--save_rows", "--no_progress",
                 "--output_dir", str(tmp_path / "o")]) == 0
    row = tifffile.imread(tmp_path / "o" / "a_row0_seed3.tif")
    assert row.dtype == np.uint16 and np.array_equal(row[~repair], stored[~repair])
    fill = row[repair]
    # an 8-bit intermediate would give values v * 257 only: at most 256 levels, every one a multiple of 257
    assert len(np.unique(fill)) > 256 and (fill % 257 != 0).mean() > 0.9


class Plain(RowsMixin):
    """Paints every hole with a fixed float colour, returning float32 (the interface) or uint8 (older plugins)."""

    multiple = 8

    def __init__(self, dtype):
        self.dtype = dtype

    def describe(self):
        return {"engine": "plain"}

    def fill(self, items, sampling, progress=True):
        check_items(items, self.multiple)
        out = []
        for it in items:
            v = it.image.astype(np.float32) / 255
            v[it.mask] = np.array([0.2, 0.50196, 0.9], np.float32)
            out.append(v if self.dtype == "float32" else to_uint8(v))
        return out


def test_uint8_fills_of_older_engines_are_taken_exactly_and_floats_keep_their_precision():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    mask = np.zeros((40, 48), bool)
    mask[8:30, 10:40] = True
    cfg = InferConfig(size=48, area="full")
    old, new = (inpaint_array(Plain(d), cfg, image, mask, [1]) for d in ("uint8", "float32"))
    assert old.fills[0].values.dtype == np.float32
    assert np.array_equal(old.results[0], new.results[0])  # the same 8-bit row either way
    assert np.array_equal(old.results[0][~mask], image[~mask])
    assert np.allclose(new.fills[0].values, [0.2, 0.50196, 0.9])  # not rounded to 8 bits on the way
    assert np.allclose(old.fills[0].values, np.array([51, 128, 230]) / 255)
    with pytest.raises(ValueError, match="float32 in \\[0, 1\\]"):
        to_float(np.zeros((2, 2, 3), np.int32))


def test_a_native_window_composes_to_the_engines_values_exactly_and_rounds_as_before():
    """Where no resizing or blending happens, the fill is the engine's float bit for bit, and its 8 bits are
    what the engines returned before (round(v * 255) in float32, halves to even)."""
    rng = np.random.default_rng(2)
    result = rng.random((32, 40, 3), dtype=np.float32)
    result[0, 0] = 0.5  # v * 255 = 127.5 exactly: halves go to even
    original = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    ys, xs = np.nonzero(np.ones((50, 60), bool))
    inside = (ys >= 10) & (ys < 42) & (xs >= 5) & (xs < 45)
    values = compose_values(original, ys[inside], xs[inside], [Region((10, 5, 42, 45), (32, 40), ramp=16)], [result])
    assert values.dtype == np.float32 and np.array_equal(values, result.reshape(-1, 3))
    before = np.clip(np.round(result * 255), 0, 255).astype(np.uint8)  # what the SD engine returned
    assert np.array_equal(to_uint8(result), before) and to_uint8(result)[0, 0, 0] == 128


def test_engines_fill_floats_and_inpaint_is_the_8bit_rounding_of_them(tiny_model_dir):
    image = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    mask = np.zeros((64, 48), bool)
    mask[12:44, 8:36] = True
    for engine in (load_engine(str(tiny_model_dir)), load_engine("builtin")):
        (f,) = engine.fill([Canvas(image, mask, 4)], Sampling(steps=2), progress=False)
        assert f.dtype == np.float32 and f.shape == (64, 48, 3) and 0 <= f.min() and f.max() <= 1
        assert not np.array_equal(f, to_float(to_uint8(f)))  # finer than 8 bits
        assert np.array_equal(engine.inpaint(image, mask, [4], Sampling(steps=2), progress=False)[0], to_uint8(f))
