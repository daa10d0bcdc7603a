"""Native-resolution detection in tiles: one tile is the untiled computation, many tiles blend without
seams, memory stays in bands, and a 1-px scratch across a large image is found."""

import numpy as np
import pytest
import torch

from inpaint_kit.detect import tiling
from inpaint_kit.detect.detector import detect_mask, load_detector, native_bf16
from inpaint_kit.detect.network import build, save_detector
from inpaint_kit.errors import InpaintKitError


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    """A random-weight ``tiny`` detector folder (BatchNorm statistics made non-trivial)."""
    net = build("tiny", seed=0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return save_detector(tmp_path_factory.mktemp("det") / "tiny", net)


def photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = 120 + 60 * np.sin(x / 17.0)[..., None] * np.cos(y / 23.0)[..., None] + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def untiled(det, image):
    """The network on the whole image at once: mirrored by ``context`` px and up to its multiple."""
    c, m = det.context, det.multiple
    h, w = image.shape[:2]
    ph, pw = -(-(h + 2 * c) // m) * m, -(-(w + 2 * c) // m) * m
    padded = np.pad(image, ((c, ph - h - c), (c, pw - w - c), (0, 0)), mode="reflect")
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=det.dtype == "bf16"):
        x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 127.5 - 1
        p = torch.sigmoid(det.net(x).float())[0, 0].numpy()[c : c + h, c : c + w]
    return np.round(np.clip(p, 0, 1) * 65535).astype(np.uint16)


def test_one_tile_equals_the_untiled_network(tiny_detector):
    det = load_detector(str(tiny_detector), device="cpu", tile=512, dtype="fp32")
    image = photo(150, 203)
    assert det.tiles(150, 203) == 1
    assert np.array_equal(det.probability(image), untiled(det, image))


def test_bf16_runs_the_network_in_bfloat16_close_to_fp32(tiny_detector):
    image = photo(150, 203)
    fp32 = load_detector(str(tiny_detector), device="cpu", dtype="fp32")
    bf16 = load_detector(str(tiny_detector), device="cpu", dtype="bf16")
    assert (fp32.dtype, bf16.dtype) == ("fp32", "bf16") and bf16.describe()["detector_dtype"] == "bf16"
    got = bf16.probability(image)
    assert np.array_equal(got, untiled(bf16, image))  # one tile: the network under bf16 autocast, nothing else
    diff = np.abs(got.astype(int) - fp32.probability(image))
    assert 0 < diff.max() <= 0.02 * 65535  # bf16's 8-bit mantissa: close to fp32, not the same arithmetic
    assert load_detector(str(tiny_detector), device="cpu").dtype == ("bf16" if native_bf16("cpu") else "fp32")


def test_dtype_errors_are_one_line():
    with pytest.raises(InpaintKitError, match="--dtype 'fp16': choose one of auto, fp32, bf16"):
        load_detector("builtin", device="cpu", dtype="fp16")
    with pytest.raises(InpaintKitError, match="--dtype bf16 does not apply to --model classical"):
        load_detector("classical", dtype="bf16")


def test_many_tiles_blend_without_seams(tiny_detector):
    image = photo(300, 270, seed=1)
    whole = load_detector(str(tiny_detector), device="cpu", dtype="fp32", tile=512).probability(image)
    tiled = load_detector(str(tiny_detector), device="cpu", dtype="fp32", tile=64, overlap=16)
    assert tiled.tiles(300, 270) > 20
    diff = np.abs(tiled.probability(image).astype(int) - whole.astype(int))
    # the tiny net sees less than the 48-px context, so tiles agree with the whole image up to float rounding
    assert diff.max() <= 2


@pytest.fixture(scope="module")
def view_detectors(tmp_path_factory):
    """A seeded random ``tiny`` network with its head rescaled so that its probabilities spread over [0, 1]
    (logits of about unit spread around 0), saved once alone and once with test-time views none + hflip."""
    net = build("tiny", seed=1).eval()
    with torch.no_grad():
        x = torch.from_numpy(photo(96, 96, seed=2)).permute(2, 0, 1)[None].float() / 127.5 - 1
        z = net(x) - net.head.bias  # the logits without the bias
        net.head.weight.div_(z.std())
        net.head.bias.copy_(-z.median() / z.std())
    one = save_detector(tmp_path_factory.mktemp("det") / "one", net)
    net.config.views = ("none", "hflip")
    return one, save_detector(tmp_path_factory.mktemp("det") / "flip", net)


def test_views_average_the_network_over_flips(view_detectors):
    image = photo(152, 200, seed=2)  # with the 48-px context, sides of a multiple of 4: no one-sided padding
    one = load_detector(str(view_detectors[0]), device="cpu", dtype="fp32")
    det = load_detector(str(view_detectors[1]), device="cpu", dtype="fp32")
    assert det.views == ("none", "hflip") and det.describe()["views"] == ["none", "hflip"]
    mirrored = untiled(one, np.ascontiguousarray(image[:, ::-1]))[:, ::-1]
    expected = (untiled(one, image).astype(float) + mirrored) / 2
    got = det.probability(image)
    assert np.abs(got - expected).max() <= 2  # float rounding
    assert np.abs(got.astype(int) - one.probability(image)).max() > 1000  # the random network is not symmetric
    # averaged over a flip, a mirrored photo gets the mirrored map: a network's one-sided guess cancels out
    flipped = det.probability(np.ascontiguousarray(image[:, ::-1]))[:, ::-1]
    assert np.abs(flipped.astype(int) - got).max() <= 2
    assert np.abs(one.probability(np.ascontiguousarray(image[:, ::-1]))[:, ::-1].astype(int)
                  - one.probability(image)).max() > 1000


def test_unknown_views_in_a_detector_folder_are_a_one_line_error(tiny_detector, tmp_path):
    import json
    import shutil


    folder = tmp_path / "bad"
    shutil.copytree(tiny_detector, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "views": ["none", "rot90"]}))
    with pytest.raises(InpaintKitError, match=r"config\.json: detector views \['none', 'rot90'\]: need one or more of "
                                              r"none, hflip, vflip, hvflip; re-export"):
        load_detector(str(folder), device="cpu")
    del cfg["views"]  # a folder saved before views existed: the network alone
    (folder / "config.json").write_text(json.dumps(cfg))
    assert load_detector(str(folder), device="cpu").views == ("none",)


def test_ramps_are_a_partition_of_unity():
    for length, tile, overlap, multiple in [(1000, 256, 32, 16), (513, 512, 32, 16), (97, 40, 8, 1)]:
        s = tiling.starts(length, tile, overlap, multiple)
        lengths = [min(tile, length - x) for x in s]
        total = np.zeros(length)
        for x, n, r in zip(s, lengths, tiling.ramps(s, lengths)):
            total[x : x + n] += r
        assert np.allclose(total, 1.0) and all(x % multiple == 0 for x in s)
        assert all(a + n - b >= overlap for a, n, b in zip(s, lengths, s[1:]))


def test_bands_bound_memory_and_cover_every_pixel():
    # a fake "network" that reports its window's own coordinates: every output pixel must come from a
    # window that contains it, whatever the tiling
    h, w = 700, 530
    image = np.zeros((h, w, 3), np.uint8)
    calls = []

    def fn(win):
        calls.append(win.shape[:2])
        return np.full(win.shape[:2], 0.25, np.float32)

    out = tiling.tiled(image, fn, tile=128, overlap=16, context=16, multiple=16)
    assert out.shape == (h, w) and (out == round(0.25 * 65535)).all()
    assert max(max(c) for c in calls) <= 128 + 2 * 16


def test_a_one_pixel_scratch_across_a_large_image_is_found():
    # a 1-px bright scratch across a 6000-px-wide photo (the scan width; coffee, never trained on, at 2x
    # and mirrored end to end so that it has no seams), found at native resolution; the truth is where it
    # visibly changed the picture
    import cv2
    from skimage import data

    from inpaint_kit.detect.metrics import counts, near

    band = cv2.resize(data.coffee(), (1200, 800), interpolation=cv2.INTER_CUBIC)[300:556]  # (256, 1200, 3)
    image = np.ascontiguousarray(np.concatenate([band, band[:, ::-1]] * 3, axis=1)[:, :6000])
    row = image[130].astype(int)
    image[130] = np.clip(row + 70, 0, 255).astype(np.uint8)
    truth = np.zeros(image.shape[:2], bool)
    truth[130] = (image[130].astype(int) - row).max(axis=1) >= 20
    assert truth.sum() > 4500
    pred = detect_mask(image, load_detector("builtin", device="cpu"))
    assert counts(pred, truth).recall >= 0.9
    assert (pred & ~near(truth, 2)).mean() < 0.01  # and little else of the picture
