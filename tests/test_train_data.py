"""Training data: layout checks (one-line errors), captions, deterministic draws, pairs vs random masks."""

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.errors import InpaintKitError
from inpaint_kit.train.lora.data import collate, load_sample
from inpaint_kit.train.samples import draw_index, find_samples


def make_data(root, n=3, hw=(40, 48), masks="masks", with_masks=True):
    """``n`` random images with a black (= repair in masks/) square at rows 4-12, cols 8-20."""
    rng = np.random.default_rng(0)
    (root / "imgs" / "sub").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*hw, 3), dtype=np.uint8)).save(root / "imgs" / "sub" / f"im{i}.png")
        if with_masks:
            (root / masks).mkdir(exist_ok=True)
            m = np.full(hw, 255, np.uint8)
            m[4:12, 8:20] = 0
            Image.fromarray(m if masks == "masks" else 255 - m).save(root / masks / f"im{i}.png")
    return root


def test_pairs_recursive_captions_and_masks_inverted(tmp_path):
    root = make_data(tmp_path / "a", masks="masks_inverted")
    (root / "imgs" / "sub" / "im1.txt").write_text("a mural of sks cave\n")
    samples = find_samples(root, "pairs", prompt="default caption", size=64)
    assert [s.image.name for s in samples] == ["im0.png", "im1.png", "im2.png"]
    assert all(s.mask is not None and s.mask_mode == "white" for s in samples)
    assert [s.caption for s in samples] == ["default caption", "a mural of sks cave", "default caption"]
    # masks_inverted/ white = repair and masks/ black = repair mean the same hole.
    item = load_sample(samples[0], 40, "pairs", draw=0, seed=1)
    assert item["mask"].sum() > 0 and item["damage"].sum() == 0


def test_random_masks_mark_given_mask_as_damage(tmp_path):
    root = make_data(tmp_path / "a", hw=(32, 32))
    s = find_samples(root, "random", size=32)[0]
    item = load_sample(s, 32, "random", draw=3, seed=1)
    assert item["pixels"].shape == (3, 32, 32) and item["pixels"].dtype == np.float32
    assert -1.0 <= item["pixels"].min() and item["pixels"].max() <= 1.0
    # Size equals the image: no resize, so the damage is the given square (possibly flipped).
    damage = item["damage"][0].astype(bool)
    expected = np.zeros((32, 32), bool)
    expected[4:12, 8:20] = True
    assert np.array_equal(damage, expected) or np.array_equal(damage, expected[:, ::-1])
    assert item["mask"].sum() > 0  # a generated hole
    assert load_sample(s, 32, "random", draw=3, seed=1, damage_aware=False)["damage"].sum() == 0


def test_mixed_alternates_and_draws_are_deterministic(tmp_path):
    root = make_data(tmp_path / "a", hw=(32, 32))
    s = find_samples(root, "mixed", size=32)[0]
    even, odd = load_sample(s, 32, "mixed", 4, 7), load_sample(s, 32, "mixed", 5, 7)
    assert even["damage"].sum() == 0 and odd["damage"].sum() == 8 * 12  # pairs, then random + damage
    again = load_sample(s, 32, "mixed", 5, 7)
    assert all(np.array_equal(odd[k], again[k]) for k in ("pixels", "mask", "damage"))
    b = collate([even, odd])
    assert tuple(b["pixels"].shape) == (2, 3, 32, 32) and tuple(b["mask"].shape) == (2, 1, 32, 32)
    # Every epoch visits every sample once.
    assert sorted(draw_index(3, d, 5) for d in range(5)) == [0, 1, 2, 3, 4]
    assert sorted(draw_index(3, d, 5) for d in range(5, 10)) == [0, 1, 2, 3, 4]


def test_crop_is_square_of_size_from_larger_images(tmp_path):
    root = make_data(tmp_path / "a", hw=(40, 72))
    s = find_samples(root, "pairs", size=32)[0]
    item = load_sample(s, 32, "pairs", 0, 1)
    assert item["pixels"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    # The crops move: each draw is an exact 32-square window of the scaled image (maybe flipped), and
    # the draws do not all take the same window.
    scaled = np.asarray(Image.open(s.image).resize((58, 32), Image.LANCZOS)).astype(np.float32) / 127.5 - 1.0
    lefts = set()
    for draw in range(8):
        crop = load_sample(s, 32, "pairs", draw, 1)["pixels"].transpose(1, 2, 0)
        found = [x for x in range(58 - 32 + 1) for c in (crop, crop[:, ::-1]) if np.allclose(scaled[:, x:x + 32], c)]
        assert len(found) >= 1
        lefts.add(found[0])
    assert len(lefts) >= 3


@pytest.mark.parametrize("case, message", [
    ("no_imgs", "no imgs/ folder"),
    ("empty", "no images found"),
    ("unpaired", "no mask with this stem"),
    ("no_masks", "no masks/ or masks_inverted/"),
    ("both", "both masks/ and masks_inverted/"),
    ("small", "smaller than --size/8"),
])
def test_bad_data_root_is_one_line_error(tmp_path, case, message):
    root = tmp_path / "d"
    if case == "no_imgs":
        root.mkdir()
    elif case == "empty":
        (root / "imgs").mkdir(parents=True)
    elif case == "unpaired":
        make_data(root)
        (root / "masks" / "im1.png").unlink()
    elif case == "no_masks":
        make_data(root, with_masks=False)
    elif case == "both":
        make_data(root)
        (root / "masks_inverted").mkdir()
    elif case == "small":
        make_data(root, hw=(7, 40))  # 7 px < 64 / 8
    with pytest.raises(InpaintKitError, match=message) as e:
        find_samples(root, "pairs", size=64)
    assert "\n" not in str(e.value)


def test_random_source_needs_no_masks(tmp_path):
    root = make_data(tmp_path / "a", with_masks=False)
    samples = find_samples(root, "random", size=64)
    assert len(samples) == 3 and all(s.mask is None for s in samples)
    assert load_sample(samples[0], 64, "random", 0, 1)["damage"].sum() == 0


def alpha_mask(path, hw, box, colour=255):
    """A mask painted only in the alpha channel (strokes on a transparent layer): uniform colour, alpha 255
    on ``box`` (rows, cols slices) and 0 elsewhere."""
    rgba = np.zeros((*hw, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[box + (3,)] = 255
    Image.fromarray(rgba, "RGBA").save(path)


def test_training_readers_take_masks_painted_in_the_alpha_channel(tmp_path):
    """Training reads a mask file as infer does (masks.read_mask): strokes painted on a transparent layer
    are the hole, whatever --mask_mode (read as grey alone, this white layer would mark nothing)."""
    from inpaint_kit.train.controlnet import data as controlnet_data
    from inpaint_kit.train.controlnet.config import ControlNetTrainConfig

    root = make_data(tmp_path / "a", hw=(32, 32))
    for i in range(3):
        alpha_mask(root / "masks" / f"im{i}.png", (32, 32), (slice(4, 12), slice(8, 20)))
    expected = np.zeros((32, 32), bool)
    expected[4:12, 8:20] = True
    sample = find_samples(root, "pairs", size=32)[0]
    hole = load_sample(sample, 32, "pairs", draw=0, seed=1)["mask"][0].astype(bool)
    assert np.array_equal(hole, expected) or np.array_equal(hole, expected[:, ::-1])
    damage = load_sample(sample, 32, "random", draw=1, seed=1)["damage"][0].astype(bool)
    assert np.array_equal(damage, expected) or np.array_equal(damage, expected[:, ::-1])
    cfg = ControlNetTrainConfig(data=str(root), output_dir=str(tmp_path / "o"), size=32, mask_source="pairs")
    item = controlnet_data.load_item(controlnet_data.find_items(cfg)[0], cfg, 0)
    hole = item["mask"][0].astype(bool)
    assert np.array_equal(hole, expected) or np.array_equal(hole, expected[:, ::-1])
