"""Reading every kind of input file correctly, and failing on bad ones with one line naming the file."""

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.errors import InpaintKitError
from inpaint_kit.images import load_grey, load_image, read_metadata, save_png


def test_rgb_png_round_trip_keeps_pixels_and_metadata(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = save_png(tmp_path / "a.png", img, {"seeds": [3, 4], "prompt": "x"})
    assert np.array_equal(load_image(path), img)
    assert read_metadata(path) == {"seeds": [3, 4], "prompt": "x"}
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temp file left behind


def test_greyscale_palette_and_rgba_become_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    assert np.array_equal(load_image(tmp_path / "g.png"), np.repeat(grey[..., None], 3, axis=2))

    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[:, :2] = (200, 10, 30)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    assert np.array_equal(load_image(tmp_path / "p.png"), rgb)

    rgba = np.dstack([rgb, np.zeros((3, 4), np.uint8)])  # fully transparent: colours are kept
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png"), rgb)


def test_alpha_is_not_read_as_repair_in_masks(tmp_path):
    white = np.full((2, 2, 4), 255, np.uint8)
    white[..., 3] = 0  # transparent white stays white (= keep in black mode)
    Image.fromarray(white, "RGBA").save(tmp_path / "m.png")
    assert (load_grey(tmp_path / "m.png") == 255).all()


def test_16_bit_images_scale_to_8_bit(tmp_path):
    a = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "d.png")
    out = load_image(tmp_path / "d.png")
    assert out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == [[0, 255], [128, 1]]


def test_exif_rotation_is_applied(tmp_path):
    img = np.zeros((2, 4, 3), np.uint8)  # 4 wide, 2 high
    img[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (4, 2, 3)
    # The pixels move, not only the shape: 90 degrees clockwise takes the top-left pixel to the top-right.
    assert np.abs(out.astype(int) - np.rot90(img, k=-1)).max() <= 40  # (JPEG rounding)
    assert out[0, 1].min() > 200 and out[0, 0].max() < 60 and out[3, 0].max() < 60


@pytest.mark.parametrize("content,expected", [
    (None, "no such file"),
    (b"", "file is empty"),
    (b"this is not an image at all", "not a readable image"),
])
def test_bad_files_fail_with_one_line_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InpaintKitError) as e:
        load_image(path)
    assert str(path) in str(e.value) and expected in str(e.value) and "\n" not in str(e.value)


def test_truncated_png_is_refused(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InpaintKitError, match="t.png: not a readable image"):
        load_image(tmp_path / "t.png")


def test_huge_images_are_refused_before_decoding(tmp_path):
    Image.new("L", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(InpaintKitError, match=r"300x300 \(0.1 MP\) is over the 0.01 MP limit"):
        load_image(tmp_path / "big.png", max_pixels=10_000)
