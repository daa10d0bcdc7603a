"""Large scans (--area): mask coverage at every scale, crop windows, exact pixels, rows, metadata, errors."""

import numpy as np
import pytest
import torch

from inpaint_kit.engine.options import DDPMOptions
from inpaint_kit.cli import main
from inpaint_kit.engine import Sampling, load_engine
from inpaint_kit.geometry import (
    block_mask, compose, cover_mask, plan_area, plan_crops, region_weights, resolve_area, to_work,
)
from inpaint_kit.images import read_metadata, save_png
from inpaint_kit.inpaint import InferConfig, inpaint_array
from inpaint_kit.masks import create_advanced_mask


def nearest_up(small: np.ndarray, hw) -> np.ndarray:
    """Scale a working mask back up to the image with nearest neighbour (what a pixel 'sees')."""
    h, w = hw
    rows = (np.arange(h) * small.shape[0]) // h
    cols = (np.arange(w) * small.shape[1]) // w
    return small[rows][:, cols]


def photo(h, w, seed=0):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([80 + 90 * x / w, 60 + 120 * y / h, 140 + 50 * np.sin(x / 17 + y / 23)], -1)
    return np.clip(base + np.random.default_rng(seed).normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


# --- coverage -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_working_mask_scaled_back_up_contains_every_damaged_pixel(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(90, 400, 2))
    mask = create_advanced_mask("thin", h, w, rng) | create_advanced_mask("stripes", h, w, rng)
    mask &= rng.random((h, w)) < 0.7  # broken, dotted cracks: the hardest case for nearest neighbour
    for scale in (0.07, 0.13, 0.25, 0.33, 0.5, 0.71, 0.9, 1.0, 1.3):
        th, tw = max(1, round(h * scale)), max(1, round(w * scale))
        small = cover_mask(mask, (th, tw))
        assert nearest_up(small, (h, w))[mask].all(), (h, w, scale)


def test_cover_mask_marks_exactly_the_working_pixels_over_damage():
    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w, th, tw = (int(v) for v in rng.integers(1, 30, 4))
        mask = rng.random((h, w)) < 0.08
        small = cover_mask(mask, (th, tw))
        for i in range(th):  # brute force: source pixels overlapping target pixel (i, j) by a positive area
            rows = [r for r in range(h) if min((i + 1) * h / th, r + 1) - max(i * h / th, r) > 0]
            for j in range(tw):
                cols = [c for c in range(w) if min((j + 1) * w / tw, c + 1) - max(j * w / tw, c) > 0]
                assert small[i, j] == mask[np.ix_(rows, cols)].any()


def test_to_work_keeps_a_one_pixel_crack_that_nearest_neighbour_drops():
    mask = np.zeros((400, 400), bool)
    mask[3::7, 201] = True  # a dotted 1-px crack: nearest neighbour at 1/5 scale samples none of it
    image = photo(400, 400)
    _, work_mask = to_work(image, mask, 80)
    assert nearest_up(work_mask, mask.shape)[mask].all()


def test_block_mask_repaints_every_latent_cell_touched():
    mask = np.zeros((24, 32), bool)
    mask[9, 17] = True
    mask[0, 0] = True
    blocks = block_mask(mask, 8)
    assert blocks[8:16, 16:24].all() and blocks[0:8, 0:8].all() and blocks.sum() == 128
    with pytest.raises(ValueError):
        block_mask(np.zeros((10, 16), bool), 8)


def test_sd_engine_repaints_every_latent_cell_a_thin_crack_touches(tiny_model_dir):
    """The pipeline shrinks the mask with nearest neighbour; the engine must hand it whole cells."""
    engine = load_engine(str(tiny_model_dir), device="cpu")
    seen = []
    hook = engine.pipe.unet.register_forward_pre_hook(lambda m, args: seen.append(args[0][:, 4].clone()))
    mask = np.zeros((64, 64), bool)
    mask[13, 3:60] = True  # row 13 is never a nearest-neighbour sample of 8-px cells (rows 4, 12, 20, ...)
    try:
        engine.inpaint(photo(64, 64), mask, [1], Sampling(steps=2), progress=False)
    finally:
        hook.remove()
    expected = cover_mask(mask, (8, 8))
    assert expected[1].all() and expected.sum() == 8
    assert torch.equal(seen[0][0] > 0.5, torch.from_numpy(expected))


def test_lora_training_masks_keep_thin_damage_when_downscaled(tmp_path):
    from inpaint_kit.train.lora.data import load_sample
    from inpaint_kit.train.samples import Sample

    from PIL import Image

    mask = np.full((320, 480), 255, np.uint8)
    mask[::9] = 0  # 1-px horizontal scratches every 9 rows, black = damage
    save_png(tmp_path / "a.png", photo(320, 480))
    Image.fromarray(mask, "L").save(tmp_path / "a_mask.png")
    item = load_sample(Sample(tmp_path / "a.png", tmp_path / "a_mask.png", "black", ""), 64, "pairs", draw=0, seed=0)
    rows = (item["mask"][0] > 0).any(axis=1)
    # at 1/5 scale, working row i lies over source rows 5i..5i+4: repair exactly where one is a scratch
    expected = [any(r % 9 == 0 for r in range(5 * i, 5 * i + 5)) for i in range(64)]
    assert rows.tolist() == expected


# --- planning -----------------------------------------------------------------------------------

def test_auto_is_crops_only_for_images_longer_than_size():
    assert resolve_area("auto", 600, 900, 768) == "crops"
    assert resolve_area("auto", 600, 768, 768) == "full"
    assert resolve_area("full", 6000, 9000, 768) == "full"
    with pytest.raises(ValueError):
        resolve_area("tiles", 10, 10, 64)


def test_two_distant_damages_make_two_native_windows_and_near_ones_merge():
    mask = np.zeros((1000, 1500), bool)
    mask[100:110, 100:140] = True
    mask[800:805, 1300:1400] = True
    regions = plan_crops(mask, size=512, padding=32, fit=False)
    assert len(regions) == 2 and all(r.native for r in regions)
    assert all(r.work_hw[0] % 64 == 0 and r.work_hw[1] % 64 == 0 for r in regions)  # granule: shared batches
    fitted = plan_crops(mask, size=512, padding=32)  # fitted to the damage: half-granule sides
    assert len(fitted) == 2 and all(r.work_hw[0] % 32 == 0 and r.work_hw[1] % 32 == 0 for r in fitted)
    mask[120:125, 150:160] = True  # within the padding of the first: merged into one window
    assert len(plan_crops(mask, size=512, padding=32, fit=False)) == 2


@pytest.mark.parametrize("large", ["tile", "scale"])
@pytest.mark.parametrize("seed", range(4))
def test_windows_cover_the_whole_mask_and_respect_size(seed, large):
    rng = np.random.default_rng(seed)
    h, w = 700 + 37 * seed, 1100 - 53 * seed
    mask = create_advanced_mask("thin", h, w, rng) | create_advanced_mask("random_rect", h, w, rng)
    regions = plan_crops(mask, size=256, padding=16, large=large)
    covered = np.zeros_like(mask)
    for r in regions:
        t, l, b, rr = r.box
        assert 0 <= t < b <= h and 0 <= l < rr <= w
        assert max(r.work_hw) <= 256 and r.work_hw[0] % 8 == 0 and r.work_hw[1] % 8 == 0
        if large == "tile":
            assert max(r.shape) <= 256  # native resolution: never shrunk
        covered[t:b, l:rr] = True
    assert covered[mask].all()


def test_long_cracks_are_tiled_with_overlap_and_weights_ramp_only_towards_edges_inside_the_image():
    from inpaint_kit.geometry import Region

    mask = np.zeros((300, 900), bool)
    mask[150, 10:890] = True  # a long crack: overlapping native tiles
    tiles = plan_crops(mask, size=256, padding=8)
    assert len(tiles) >= 4 and all(r.native and r.shape[1] == 256 for r in tiles)
    assert all(a.box[3] > b.box[1] for a, b in zip(tiles, tiles[1:]))  # neighbours overlap
    w = region_weights(Region((0, 0, 64, 256), (64, 256), ramp=32), (300, 900))
    assert w[0, 0] == 1.0 and w[:, :200].min() > w[-1, -1] > 0  # image borders (top, left) do not ramp
    assert w[0, -1] < w[0, -20] < 1.0 == w[0, -40]  # the right edge, inside the image, does (over 32 px)


def test_compose_keeps_single_window_pixels_exact_and_averages_overlaps():
    original = np.zeros((40, 60, 3), np.uint8)
    need = np.ones((40, 60), bool)
    from inpaint_kit.geometry import Region

    a, b = Region((0, 0, 40, 40), (40, 40), ramp=4), Region((0, 20, 40, 60), (40, 40), ramp=4)
    out = compose(original, need, [a, b], [np.full((40, 40, 3), 100, np.uint8), np.full((40, 40, 3), 200, np.uint8)])
    assert (out[:, :20] == 100).all() and (out[:, 40:] == 200).all()
    middle = out[0, 20:40, 0].astype(int)
    assert middle[0] < middle[-1] and 100 <= middle.min() and middle.max() <= 200  # a ramp, no step


# --- the job ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return load_engine(str(tiny_model_dir), device="cpu")


def two_damages(h=200, w=300):
    mask = np.zeros((h, w), bool)
    mask[20:23, 20:60] = True  # a scratch top left
    mask[150:170, 240:260] = True  # a loss bottom right
    return mask


@pytest.mark.parametrize("area", ["full", "crops", "auto"])
def test_outside_the_mask_is_bit_exact_in_every_area_mode(engine, area):
    image, mask = photo(200, 300), two_damages()
    cfg = InferConfig(model="tiny", size=64, steps=2, rows=2, area=area, padding=8).validate()
    job = inpaint_array(engine, cfg, image, mask, [3, 4], progress=False)
    assert job.area == ("full" if area == "full" else "crops")
    for result in job.results:
        assert result.shape == image.shape and np.array_equal(result[~mask], image[~mask])
        assert (result[mask] != image[mask]).any()


def test_crops_rows_are_the_same_alone_or_batched_and_windows_share_calls(engine):
    image, mask = photo(200, 300), two_damages()
    cfg = InferConfig(model="tiny", size=64, steps=2, area="crops", padding=8, thin_width=0).validate()
    batched = inpaint_array(engine, cfg, image, mask, [10, 11, 12], progress=False)
    assert len(batched.regions) == 2 and {r.work_hw for r in batched.regions} == {(64, 64)}
    # 3 rows x 2 windows of one size: one pipeline call of 6 canvases per UNet step
    assert engine.last_info["unet_rows"] == 6 * engine.last_info["unet_evaluations"]
    alone = inpaint_array(engine, cfg, image, mask, [11], progress=False)
    assert np.abs(batched.results[1].astype(int) - alone.results[0].astype(int)).max() <= 1
    assert not np.array_equal(batched.results[0], batched.results[1])


def test_crops_work_at_native_resolution_while_full_scales_down(engine):
    image, mask = photo(200, 300), two_damages()
    full = inpaint_array(engine, InferConfig(size=64, steps=2, area="full").validate(), image, mask, [1], progress=False)
    crops = inpaint_array(engine, InferConfig(size=64, steps=2, area="crops", padding=8).validate(), image, mask, [1],
                          progress=False)
    assert full.work_hw == (40, 64) and [r.record()[4:] for r in full.regions] == [[40, 64]]
    assert all(r.native for r in crops.regions)


def test_mask_dilate_grows_the_repaired_region_only(engine):
    image, mask = photo(200, 300), two_damages()
    cfg = InferConfig(size=64, steps=2, area="crops", padding=8, mask_dilate=3).validate()
    job = inpaint_array(engine, cfg, image, mask, [5], progress=False)
    import cv2

    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    assert job.mask.sum() > mask.sum() and job.mask[mask].all() and (dist[job.mask] <= 3.5).all()
    assert np.array_equal(job.results[0][~job.mask], image[~job.mask])
    assert (job.results[0][job.mask & ~mask] != image[job.mask & ~mask]).any()


def test_ddpm_engine_batches_each_rows_windows_and_a_row_is_the_same_alone_or_batched(tmp_path):
    from inpaint_kit.ddpm.unet import PRESETS, InpaintUNet, ModelConfig, save_model

    torch.manual_seed(0)
    folder = save_model(tmp_path / "ddpm", InpaintUNet(ModelConfig(resolution=16, **PRESETS["tiny"])))
    eng = load_engine(str(folder), options=DDPMOptions(init="noise"))
    calls = []
    eng.net.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    image, mask = photo(200, 300), two_damages()
    cfg = InferConfig(model=str(folder), size=64, steps=3, area="crops", padding=8).validate()
    one = inpaint_array(eng, cfg, image, mask, [7], progress=False)
    one_calls, calls[:] = list(calls), []
    three = inpaint_array(eng, cfg, image, mask, [6, 7, 8], progress=False)
    # each row's windows go through the network together (calls of several windows), and never with another
    # row's: a batch's make-up may change a convolution's last bit, so the three rows make exactly the calls
    # the one row makes, three times over
    assert max(one_calls) > 1 and sorted(calls) == sorted(one_calls * 3)
    assert np.array_equal(three.results[1], one.results[0])  # and a row is the same alone or batched
    assert np.array_equal(three.results[0][~mask], image[~mask])


def test_cli_records_windows_and_refuses_bad_values(tiny_model_dir, tmp_path, capsys):
    image, mask = photo(200, 300), two_damages()
    save_png(tmp_path / "scan.png", image)
    from PIL import Image

    Image.fromarray(np.where(mask, 0, 255).astype(np.uint8), "L").save(tmp_path / "scan_mask.png")
    out = tmp_path / "out.png"
    base = ["infer", "--model", str(tiny_model_dir), "--image", str(tmp_path / "scan.png"),
            "--mask", str(tmp_path / "scan_mask.png"), "--output", str(out), "--steps", "2", "--rows", "1",
            "--seed", "3", "--size", "64", "--padding", "8", "--thin_width", "0"]
    assert main(base) == 0
    meta = read_metadata(out)
    assert meta["area"] == "auto" and meta["area_used"] == "crops" and len(meta["windows"]) == 2
    assert all(len(w) == 6 for w in meta["windows"])
    capsys.readouterr()
    for flag, value, words in (("--padding", "-1", "--padding -1 must be >= 0"),
                               ("--mask_dilate", "-2", "--mask_dilate -2 must be >= 0")):
        assert main(base + ["--overwrite", flag, value]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        main(base + ["--overwrite", "--area", "tiles"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "invalid choice: 'tiles'" in err and len(err.strip().splitlines()) == 1


# --- native regions are padded, never resampled (the 9f6d37a thin-crack regression) -------------------

def test_full_mode_at_the_working_scale_pads_the_canvas_instead_of_resampling():
    """A 171x256 photo at --size 256: snapping 171 to 168 rows by resampling grew a thin mask by a working
    pixel through cover_mask (+24-53 % area) and cost about 1 dB on thin cracks. It is padded instead."""
    from inpaint_kit.geometry import crop_to_work, from_work

    image, mask = photo(171, 256), create_advanced_mask("thin", 171, 256, np.random.default_rng(3))
    _, (region,) = plan_area(mask, "full", 256, multiple=8)
    assert region.pad and region.native and region.work_hw == (176, 256)
    work_image, work_mask = crop_to_work(image, mask, region)
    assert np.array_equal(work_mask[:171], mask) and not work_mask[171:].any()  # the mask exactly, no growth
    assert np.array_equal(work_image[:171], image)  # the known pixels exactly, not resampled
    assert np.array_equal(work_image[171:], image[169:164:-1])  # reflected context below
    assert np.array_equal(from_work(work_image, region), image)


def test_clipped_crop_windows_are_padded_too():
    mask = np.zeros((100, 300), bool)
    mask[10:90, 30:40] = True  # 96 rows with padding, snapped to 128 > 100: the window is clipped to 100
    (region,) = plan_crops(mask, 256, padding=8, multiple=8, fit=False)
    assert region.box[0::2] == (0, 100) and region.pad and region.native and region.work_hw[0] == 104


def test_the_engine_sees_the_mask_unchanged_and_outside_stays_exact(engine):
    image, mask = photo(171, 256), create_advanced_mask("thin", 171, 256, np.random.default_rng(4))
    seen = []
    fill = engine.fill
    try:
        engine.fill = lambda items, *a, **k: seen.extend(items) or fill(items, *a, **k)
        job = inpaint_array(engine, InferConfig(size=256, steps=2, rows=1, thin_width=0).validate(), image, mask, [2],
                            progress=False)
    finally:
        del engine.fill
    (item,) = seen
    assert item.mask.sum() == mask.sum() and np.array_equal(item.mask[:171], mask)
    assert job.results[0].shape == image.shape and np.array_equal(job.results[0][~mask], image[~mask])
