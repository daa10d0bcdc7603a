"""Archive masters in, archive masters out (docs/archive.md): every row of the table of kept properties
is checked here through the real `infer` path (a tiny random-weight SD model, 2 steps, small images).
Sources are written with independent tools (tifffile, Pillow, imagecodecs + hand-made PNG chunks) and
outputs read back with them, never only with our own reader."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.colour import model_rgb, to_master
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.fill import Fill
from inpaint_kit.images import read_image, read_metadata
from inpaint_kit.orientation import orient, stored_coords, unorient
from inpaint_kit.record import mark_fills, sha256

H, W = 40, 56
BOX = (12, 16, 26, 40)  # top, left, bottom, right of the repair region (display pixels)
FAST = ["--steps", "2", "--size", "64", "--rows", "1", "--seed", "5", "--no_progress", "--save_rows"]
WIDE = imagecodecs.cms_profile("adobergb")  # a wide-gamut profile (864 bytes) written by LittleCMS
SRGB = imagecodecs.cms_profile("srgb")
XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
       b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:source>Inv. 1887-42, recto</dc:source></rdf:Description>'
       b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def _values(h, w, c, depth, seed=0):
    """Smooth ramps plus noise, using the low byte at 16 bits (so a lost low byte shows)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    top = 65535 if depth == 16 else 255
    base = np.stack([(x / w + k * 0.2 + y / h * 0.3) % 1.0 for k in range(c)], -1) * top * 0.9
    v = base + rng.integers(0, top // 40, (h, w, c))
    return np.clip(v, 0, top).astype(np.uint16 if depth == 16 else np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(path, pixels, icc=None, dpi=None, exif=None):
    """A PNG written by libpng (imagecodecs) with iCCP / pHYs / eXIf chunks added by hand."""
    data = imagecodecs.png_encode(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    extra = b""
    if icc:
        extra += _chunk(b"iCCP", b"wide\x00\x00" + zlib.compress(icc))
    if dpi:
        extra += _chunk(b"pHYs", struct.pack(">IIB", round(dpi / 0.0254), round(dpi / 0.0254), 1))
    if exif:
        extra += _chunk(b"eXIf", exif)
    at = 8 + 25  # after the signature and IHDR
    Path(path).write_bytes(data[:at] + extra + data[at:])
    return path


def _exif(orientation=1):
    ex = Image.Exif()
    ex[274] = orientation
    ex[271] = "Scanner Co"
    ex[0x8769] = {36867: "2021:03:04 05:06:07"}
    return ex.tobytes()[6:]  # without JPEG's Exif\0\0


def _mask_file(path, hw, box=BOX):
    m = np.full(hw, 255, np.uint8)
    t, l, b, r = box
    m[t:b, l:r] = 0  # black = repaint
    Image.fromarray(m, "L").save(path)
    repair = np.zeros(hw, bool)
    repair[t:b, l:r] = True
    return path, repair


# --- sources: (name, writer) -> (path, stored pixels, expectations) -----------------------------------

def _src_png8_rgb(d):
    px = _values(H, W, 3, 8)
    return _png(d / "a.png", px), px, dict(ext=".png", mode="RGB", icc=None, dpi=None)


def _src_png16_rgb_icc(d):
    px = _values(H, W, 3, 16)
    return _png(d / "a.png", px, icc=WIDE, dpi=600), px, dict(ext=".png", mode="RGB", icc=WIDE, dpi=600)


def _src_png16_grey(d):
    px = _values(H, W, 1, 16)
    return _png(d / "a.png", px, dpi=300), px, dict(ext=".png", mode="L", icc=None, dpi=300)


def _src_png8_grey_alpha(d):
    px = _values(H, W, 2, 8)
    return _png(d / "a.png", px), px, dict(ext=".png", mode="LA", icc=None, dpi=None)


def _src_png16_rgba_icc_exif6(d):
    px = _values(W, H, 4, 16)  # stored landscape-on-its-side: displayed H x W after orientation 6
    return (_png(d / "a.png", px, icc=WIDE, exif=_exif(6)), px,
            dict(ext=".png", mode="RGBA", icc=WIDE, dpi=None, orientation=6))


def _src_tif16_rgb_lzw_icc(d):
    px = _values(H, W, 3, 16)
    tifffile.imwrite(d / "a.tif", px, photometric="rgb", compression="lzw", predictor=2, resolution=(600, 600),
                     resolutionunit="INCH", iccprofile=WIDE, metadata=None,
                     extratags=[(271, 2, 0, "Scanner Co", True), (700, 1, len(XMP), XMP, True)])
    return d / "a.tif", px, dict(ext=".tif", mode="RGB", icc=WIDE, dpi=600, compression=5)


def _src_tif8_grey_deflate(d):
    px = _values(H, W, 1, 8)
    tifffile.imwrite(d / "a.tif", px[..., 0], photometric="minisblack", compression="zlib", resolution=(300, 300),
                     resolutionunit="INCH", metadata=None)
    return d / "a.tif", px, dict(ext=".tif", mode="L", icc=None, dpi=300, compression=8)


def _src_tif16_rgba(d):
    px = _values(H, W, 4, 16)
    tifffile.imwrite(d / "a.tif", px, photometric="rgb", extrasamples=("unassalpha",), metadata=None)
    return d / "a.tif", px, dict(ext=".tif", mode="RGBA", icc=None, dpi=None, compression=1)


def _src_tif_cmyk(d):
    px = _values(H, W, 4, 8)
    tifffile.imwrite(d / "a.tif", px, photometric="separated", metadata=None, resolution=(400, 400),
                     resolutionunit="INCH")
    return d / "a.tif", px, dict(ext=".tif", mode="CMYK", icc=None, dpi=400, compression=1)


def _src_jpeg_exif6(d):
    rgb = _values(W, H, 3, 8)
    Image.fromarray(rgb).save(d / "a.jpg", quality=95, exif=b"Exif\x00\x00" + _exif(6), dpi=(300, 300))
    with Image.open(d / "a.jpg") as im:
        stored = np.asarray(im)  # what the JPEG decodes to, stored orientation
    return d / "a.jpg", stored, dict(ext=".png", mode="RGB", icc=None, dpi=300, orientation=6)


def _src_jpeg_cmyk(d):
    Image.fromarray(_values(H, W, 4, 8), "CMYK").save(d / "a.jpg", quality=95)
    with Image.open(d / "a.jpg") as im:
        stored = np.asarray(im)  # CMYK as Pillow decodes it (Adobe's inverted storage undone)
    return d / "a.jpg", stored, dict(ext=".tif", mode="CMYK", icc=None, dpi=None)


def _src_webp_lossless(d):
    Image.fromarray(_values(H, W, 3, 8)).save(d / "a.webp", lossless=True)
    with Image.open(d / "a.webp") as im:
        stored = np.asarray(im.convert("RGB"))
    return d / "a.webp", stored, dict(ext=".png", mode="RGB", icc=None, dpi=None)


def _src_png_palette(d):
    Image.fromarray(_values(H, W, 3, 8)).quantize(64).save(d / "a.png")
    with Image.open(d / "a.png") as im:
        stored = np.asarray(im.convert("RGB"))  # a palette PNG's row is its RGB expansion
    return d / "a.png", stored, dict(ext=".png", mode="RGB", icc=None, dpi=None)


SOURCES = {f.__name__.removeprefix("_src_"): f for f in (
    _src_png8_rgb, _src_png16_rgb_icc, _src_png16_grey, _src_png8_grey_alpha, _src_png16_rgba_icc_exif6,
    _src_tif16_rgb_lzw_icc, _src_tif8_grey_deflate, _src_tif16_rgba, _src_tif_cmyk, _src_jpeg_exif6,
    _src_jpeg_cmyk, _src_webp_lossless, _src_png_palette)}


def _read_stored(path: Path):
    """Stored values ``(H, W, C)``, ICC, dpi and EXIF of an output, read with tifffile / imagecodecs +
    Pillow (not with inpaint_kit's reader)."""
    if path.suffix == ".tif":
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first
            px = page.asarray()
            icc = page.tags[34675].value if 34675 in page.tags else None
            xr = page.tags[282].value if 282 in page.tags else None
            dpi = xr[0] / xr[1] if xr else None
            return (px if px.ndim == 3 else px[..., None]), icc, dpi, int(page.compression), page
    px = imagecodecs.png_decode(path.read_bytes())
    with Image.open(path) as im:
        icc, dpi = im.info.get("icc_profile"), (im.info.get("dpi") or (None,))[0]
    return (px if px.ndim == 3 else px[..., None]), icc, dpi, None, None


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_round_trip_keeps_depth_mode_profile_resolution_exif_and_unmasked_values(kind, tmp_path, tiny_model_dir):
    src, stored, want = SOURCES[kind](tmp_path)
    orientation = want.get("orientation", 1)
    display_hw = orient(stored, orientation).shape[:2]
    mask_file, repair = _mask_file(tmp_path / "a_mask.png", display_hw)
    out = tmp_path / "out"
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(src), "--mask", str(mask_file),
                 "--output_dir", str(out), *FAST]) == 0
    row = out / f"a_row0_seed5{want['ext']}"
    px, icc, dpi, compression, page = _read_stored(row)
    # same depth, colour mode (channels), stored orientation (not rotated)
    assert px.dtype == stored.dtype and px.shape == stored.shape
    keep = ~unorient(repair, orientation)  # the mask in stored order
    assert np.array_equal(px[keep], stored[keep]), "a value outside the mask changed"
    if want["mode"].endswith("A"):
        assert np.array_equal(px[..., -1], stored[..., -1]), "alpha changed"
    assert not np.array_equal(px[~keep], stored[~keep]), "nothing was filled"
    assert (icc or None) == want["icc"]
    if want["dpi"]:
        assert dpi == pytest.approx(want["dpi"], rel=1e-5)
    else:
        assert dpi in (None, 1.0, 72.0)  # no pHYs; TIFF: tifffile's 1/1 without a unit, as in the source
    if "compression" in want:
        assert compression == want["compression"]
    with Image.open(row) as im:
        exif = im.getexif()
    if "exif" in kind:  # sources written with EXIF (Orientation 6, Make, DateTimeOriginal in the sub-IFD)
        assert exif.get(274) == orientation and exif.get(271) == "Scanner Co"
        assert exif.get_ifd(0x8769).get(36867) == "2021:03:04 05:06:07"
    meta = read_metadata(row)
    assert meta["seeds"] == [5] and meta["input"]["mode"] == want["mode"]
    assert meta["input"]["bits"] == stored.dtype.itemsize * 8


def test_tiff_keeps_its_tags_and_carries_our_provenance_in_xmp(tmp_path, tiny_model_dir):
    src, stored, _ = _src_tif16_rgb_lzw_icc(tmp_path)
    mask_file, repair = _mask_file(tmp_path / "a_mask.png", (H, W))
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(src), "--mask", str(mask_file),
                 "--output_dir", str(tmp_path / "o"), *FAST]) == 0
    with tifffile.TiffFile(tmp_path / "o" / "a_row0_seed5.tif") as tf:
        page = tf.pages.first
        assert page.tags[271].value == "Scanner Co" and page.predictor == 2
        assert int(page.tags[296].value) == 2  # inch
        xmp = bytes(page.tags[700].value)
        assert b"inpaintkit:infotext" in xmp
        assert b"<dc:source>Inv. 1887-42, recto</dc:source>" in xmp  # the master's own XMP is kept
    meta = read_metadata(tmp_path / "o" / "a_row0_seed5.tif")
    assert meta["row_format"] == "tiff" and meta["colour_managed"] is True
    assert meta["input"]["icc_profile"].startswith("Adobe RGB")


def test_jpeg_exif_goes_into_a_tiff_row_with_its_sub_ifd(tmp_path, tiny_model_dir):
    src, stored, _ = _src_jpeg_exif6(tmp_path)
    mask_file, repair = _mask_file(tmp_path / "a_mask.png", (H, W))
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(src), "--mask", str(mask_file),
                 "--output_dir", str(tmp_path / "o"), *FAST, "--output_format", "tiff"]) == 0
    with tifffile.TiffFile(tmp_path / "o" / "a_row0_seed5.tif") as tf:
        page = tf.pages.first
        assert page.tags["Orientation"].value == 6 and page.tags["Make"].value == "Scanner Co"
        assert page.tags["ExifTag"].value["DateTimeOriginal"] == "2021:03:04 05:06:07"
        x = page.tags["XResolution"].value
        assert x[0] / x[1] == pytest.approx(300) and np.array_equal(page.asarray().shape, stored.shape)


def test_png_rows_stay_readable_by_sd_parsers(tmp_path, tiny_model_dir):
    sd_parsers = pytest.importorskip("sd_parsers")
    src, _, _ = _src_png16_rgb_icc(tmp_path)
    mask_file, _ = _mask_file(tmp_path / "a_mask.png", (H, W))
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(src), "--mask", str(mask_file),
                 "--output_dir", str(tmp_path / "o"), *FAST, "--prompt", "old wall"]) == 0
    with Image.open(tmp_path / "o" / "a_row0_seed5.png") as im:
        params = sd_parsers.ParserManager().parse(im)
    assert params is not None and params.prompts[0].value == "old wall"


def test_record_fill_layer_reproduces_the_row_and_the_record_names_everything(tmp_path, tiny_model_dir):
    src, stored, _ = _src_tif16_rgb_lzw_icc(tmp_path)
    mask_file, repair = _mask_file(tmp_path / "a_mask.png", (H, W))
    out = tmp_path / "o"
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(src), "--mask", str(mask_file),
                 "--output_dir", str(out), *FAST, "--rows", "2", "--record", "--mark_fills"]) == 0
    rec = json.loads((out / "a_record.json").read_text())
    for i, seed in enumerate((5, 6)):
        row, _, _, _, _ = _read_stored(out / f"a_row{i}_seed{seed}.tif")
        layer, icc, _, _, _ = _read_stored(out / f"a_fill_row{i}_seed{seed}.tif")
        assert layer.dtype == np.uint16 and layer.shape == (H, W, 4) and icc == WIDE
        over = stored.copy()
        on = layer[..., 3] > 0
        over[on] = layer[on][:, :3]
        assert np.array_equal(over, row), "master + fill layer != row"
        assert np.array_equal(on, repair), "the layer covers exactly the repaired pixels"
        entry = rec["outputs"][i]
        assert entry["seed"] == seed and entry["output"]["sha256"] == sha256(out / f"a_row{i}_seed{seed}.tif")
        assert entry["fill_layer"]["sha256"] == sha256(out / f"a_fill_row{i}_seed{seed}.tif")
        assert entry["marked"]["path"].endswith(f"a_row{i}_seed{seed}_marked.png")
    assert rec["input"]["sha256"] == sha256(src) and rec["mask"]["given"]["sha256"] == sha256(mask_file)
    saved_mask = np.asarray(Image.open(out / "a_mask.png"))
    assert np.array_equal(saved_mask == 255, repair)
    t, l, b, r = BOX
    assert rec["regions"] == [{"id": 1, "bbox": [t, l, b, r], "area_px": (b - t) * (r - l),
                               "area_mm2": pytest.approx((b - t) * (r - l) * (25.4 / 600) ** 2, rel=1e-3)}]
    weights = rec["model"]["weights"]["files"]
    assert weights and all(len(h) == 64 for h in weights.values())
    assert {"inpaint-kit", "torch", "diffusers"} <= set(rec["versions"])
    assert rec["seeds"] == [5, 6] and rec["settings"]["steps"] == 2 and rec["colour_management"] == "on"


def test_batch_resume_finds_tif_rows_and_the_manifest_points_to_records(tmp_path, tiny_model_dir, capsys):
    imgs, masks, out = tmp_path / "imgs", tmp_path / "masks", tmp_path / "out"
    imgs.mkdir(), masks.mkdir()
    _src_tif16_rgb_lzw_icc(imgs)
    _mask_file(masks / "a.png", (H, W))
    args = ["infer", "--model", str(tiny_model_dir), "--batch_imgs_dir", str(imgs), "--batch_masks_dir",
            str(masks), "--output_dir", str(out), *FAST, "--record"]
    assert main(args) == 0
    row = out / "a_row0_seed5.tif"
    first = row.read_bytes()
    line = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert line["record"] == str(out / "a_record.json") and str(row) in line["files"]
    capsys.readouterr()
    assert main(args) == 0  # every file there, .tif rows included: skipped
    assert "0 written, 1 skipped" in capsys.readouterr().err
    row.unlink()  # a missing .tif row: the item is completed, not skipped
    assert main(args) == 0
    assert "1 written, 0 skipped" in capsys.readouterr().err
    assert np.array_equal(tifffile.imread(row), tifffile.imread(io.BytesIO(first)))  # same seed, same row


def test_wide_gamut_round_trips_through_the_models_srgb_and_back(tmp_path):
    """The model sees the master converted to sRGB; a fill equal to what the model saw goes back to the
    master's profile within 8-bit precision (in-gamut colours), and 16-bit values, not 8-bit steps."""
    px = (_values(H, W, 3, 16) * 0.5 + 12000).astype(np.uint16)  # mid-saturation colours, inside sRGB
    _png(tmp_path / "w.png", px, icc=WIDE)
    master = read_image(tmp_path / "w.png")
    view = model_rgb(master)  # LittleCMS AdobeRGB -> sRGB, 8-bit
    reference = imagecodecs.cms_transform(px, WIDE, SRGB, colorspace="rgb", outcolorspace="rgb", outdtype=np.uint8)
    assert np.array_equal(view, reference)
    assert not np.array_equal(view, model_rgb(master, colour_management=False))  # off: stored values as sRGB
    ys, xs = np.nonzero(np.ones((H, W), bool))
    exact = imagecodecs.cms_transform(px, WIDE, SRGB, colorspace="rgb", outcolorspace="rgb",
                                      outdtype=np.float64).reshape(-1, 3)
    back = Fill(ys, xs, exact).stored(master).values  # a float fill: quantised once, at 16 bits
    assert np.abs(back.astype(int) - px.reshape(-1, 3)).max() <= 2  # LittleCMS float round trip
    back8 = Fill(ys, xs, view.reshape(-1, 3)).stored(master).values  # today's 8-bit fills
    assert np.abs(back8.astype(int) - px.reshape(-1, 3)).max() < 65535 / 255 * 1.6
    assert len(np.unique(back8 % 257)) > 1  # converted in float, not 8-bit values scaled by 257


def test_grey_master_gets_a_grey_fill_of_the_same_luminance():
    class M:  # a grey master without profile (duck-typed: to_master needs mode, icc)
        colour_mode, icc = "L", None

    v = to_master(np.array([[255, 255, 255], [0, 0, 0], [128, 128, 128], [255, 0, 0]], np.uint8), M())
    assert v.shape == (4, 1)
    assert v[:3, 0] == pytest.approx([1.0, 0.0, 128 / 255], abs=1e-9)
    assert 0.45 < v[3, 0] < 0.55  # sRGB red has luminance 0.2126 -> encoded about 0.50


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_views_match_pillow_and_map_back(orientation):
    from PIL import ImageOps

    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    ex = im.getexif()
    ex[274] = orientation
    im.info["exif"] = ex.tobytes()
    d = orient(a, orientation)
    assert np.array_equal(np.asarray(ImageOps.exif_transpose(im)), d)
    assert np.array_equal(unorient(d, orientation), a)
    ys, xs = np.nonzero(np.ones(d.shape[:2], bool))
    assert np.array_equal(d[ys, xs], a[stored_coords(ys, xs, orientation, a.shape[:2])])


def _unsupported(kind, d):
    if kind == "float32":
        tifffile.imwrite(d / "x.tif", np.zeros((8, 8, 3), np.float32), photometric="rgb")
    elif kind == "five_channels":
        tifffile.imwrite(d / "x.tif", np.zeros((8, 8, 5), np.uint8), photometric="rgb",
                         extrasamples=("unspecified", "unspecified"), planarconfig="contig")
    else:  # a palette TIFF with transparency (Pillow writes the palette and a transparency key)
        im = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").convert("P")
        im.info["transparency"] = 0
        im.save(d / "x.tif")
    return d / "x.tif"


@pytest.mark.parametrize("kind", ["float32", "five_channels", "palette_transparency"])
def test_unsupported_inputs_are_one_line_errors_naming_the_file(kind, tmp_path, capsys):
    path = _unsupported(kind, tmp_path)
    with pytest.raises(InpaintKitError) as e:
        read_image(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "supported" in msg
    mask_file, _ = _mask_file(tmp_path / "x_mask.png", (8, 8), (2, 2, 5, 5))
    assert main(["infer", "--model", "builtin", "--image", str(path), "--mask", str(mask_file),
                 "--output_dir", str(tmp_path / "o"), "--no_progress"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert any(str(path) in line and "supported" in line for line in err) and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_multipage_tiff_uses_the_first_page_and_says_so(tmp_path, tiny_model_dir, caplog):
    pages = [_values(H, W, 3, 16, seed=s) for s in range(3)]
    with tifffile.TiffWriter(tmp_path / "a.tif") as tw:
        for p in pages:
            tw.write(p, photometric="rgb", metadata=None)
    mask_file, repair = _mask_file(tmp_path / "a_mask.png", (H, W))
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(tmp_path / "a.tif"), "--mask",
                 str(mask_file), "--output_dir", str(tmp_path / "o"), *FAST]) == 0
    row = tifffile.imread(tmp_path / "o" / "a_row0_seed5.tif")
    assert np.array_equal(row[~repair], pages[0][~repair])
    assert "page 1 of 3" in read_metadata(tmp_path / "o" / "a_row0_seed5.tif")["input"]["notes"][0]
    assert "page 1 of 3" in caplog.text


def test_cmyk_as_png_is_refused_before_the_model_loads(tmp_path, capsys):
    src, _, _ = _src_tif_cmyk(tmp_path)
    mask_file, _ = _mask_file(tmp_path / "a_mask.png", (H, W))
    assert main(["infer", "--model", "/nonexistent/model", "--image", str(src), "--mask", str(mask_file),
                 "--output_format", "png", "--output_dir", str(tmp_path / "o")]) != 0
    assert "CMYK cannot be written as PNG" in capsys.readouterr().err


def test_marked_copy_outlines_fills_in_a_colour_absent_nearby():
    row = np.zeros((60, 80, 3), np.uint8)
    row[..., 1] = 255  # a green picture: the outline must not be green
    mask = np.zeros((60, 80), bool)
    mask[20:30, 30:50] = True
    out = mark_fills(row, mask)
    ring = np.any(out != row, axis=2)
    assert ring.any() and not (ring & mask).any()  # the outline lies outside the fill
    colours = np.unique(out[ring], axis=0)
    assert len(colours) == 1 and colours[0].tolist() != [0, 255, 0]
    assert np.array_equal(out[~ring], row[~ring])


def test_api_restore_from_a_path_saves_rows_at_the_masters_depth(tmp_path, tiny_model_dir):
    from inpaint_kit import api

    src, stored, _ = _src_tif16_rgb_lzw_icc(tmp_path)
    mask_file, repair = _mask_file(tmp_path / "a_mask.png", (H, W))
    result = api.restore(str(src), str(mask_file), model=str(tiny_model_dir), steps=2, size=64, rows=1, seed=5)
    path = result.save_row(0, tmp_path / "api.tif")
    px, icc, _, _, _ = _read_stored(path)
    assert px.dtype == np.uint16 and icc == WIDE and np.array_equal(px[~repair], stored[~repair])


# --- outpaint (issue 19 item 6): rows extend the master; every new pixel is fill -------------------------

def _canvas(stored_display, up, down, left, right, maxval=None):
    """The master's displayed values on the extended canvas (new area 0, alpha opaque)."""
    h, w, c = stored_display.shape
    canvas = np.zeros((h + up + down, w + left + right, c), stored_display.dtype)
    if maxval is not None:
        canvas[..., -1] = maxval
    canvas[up:up + h, left:left + w] = stored_display
    return canvas


def test_outpaint_rows_extend_the_master_at_its_depth_with_the_new_area_recorded_as_fill(tmp_path, tiny_model_dir):
    src, stored, _ = _src_tif16_rgb_lzw_icc(tmp_path)
    out = tmp_path / "o"
    assert main(["outpaint", "--model", str(tiny_model_dir), "--image", str(src), "--left", "16", "--down", "8",
                 "--output", str(out / "a_outpaint.png"), *FAST, "--rows", "2", "--record", "--mark_fills"]) == 0
    new = np.ones((H + 8, W + 16), bool)
    new[:H, 16:] = False
    rec = json.loads((out / "a_outpaint_record.json").read_text())
    for i, seed in enumerate((5, 6)):
        row, icc, dpi, compression, _ = _read_stored(out / f"a_outpaint_row{i}_seed{seed}.tif")
        assert row.dtype == np.uint16 and row.shape == (H + 8, W + 16, 3)
        assert icc == WIDE and dpi == pytest.approx(600) and compression == 5
        with tifffile.TiffFile(out / f"a_outpaint_row{i}_seed{seed}.tif") as tf:
            assert tf.pages.first.tags[271].value == "Scanner Co"
        assert np.array_equal(row[:H, 16:], stored), "the master's stored values moved or changed"
        layer, _, _, _, _ = _read_stored(out / f"a_outpaint_fill_row{i}_seed{seed}.tif")
        on = layer[..., 3] > 0
        assert np.array_equal(on, new), "every new pixel, and only they, are fill"
        over = _canvas(stored, 0, 8, 16, 0)
        over[on] = layer[on][:, :3]
        assert np.array_equal(over, row), "master + fill layer != row"
        assert rec["outputs"][i]["marked"]["path"].endswith(f"a_outpaint_row{i}_seed{seed}_marked.png")
    assert np.array_equal(np.asarray(Image.open(out / "a_outpaint_mask.png")) == 255, new)
    assert rec["regions"] == [{"id": 1, "bbox": [0, 0, H + 8, W + 16], "area_px": int(new.sum()),
                               "area_mm2": pytest.approx(new.sum() * (25.4 / 600) ** 2, rel=1e-3)}]
    assert rec["input"]["sha256"] == sha256(src) and rec["input"]["size"] == [W, H] and rec["mask"]["given"] is None
    meta = read_metadata(out / "a_outpaint_row0_seed5.tif")
    assert meta["original_size"] == [W, H] and meta["offset"] == [16, 0] and meta["colour_managed"] is True


def test_outpaint_keeps_orientation_and_alpha_and_batch_resume_finds_tif_rows(tmp_path, tiny_model_dir, capsys):
    src, stored, _ = _src_png16_rgba_icc_exif6(tmp_path)  # stored on its side, displayed H x W
    out = tmp_path / "o"
    assert main(["outpaint", "--model", str(tiny_model_dir), "--image", str(src), "--up", "8",
                 "--output", str(out / "a_outpaint.png"), *FAST]) == 0
    row, icc, _, _, _ = _read_stored(out / "a_outpaint_row0_seed5.png")
    shown = orient(row, 6)  # stored as the source is, the same Orientation tag
    assert row.dtype == np.uint16 and shown.shape == (H + 8, W, 4) and icc == WIDE
    assert np.array_equal(shown[8:], orient(stored, 6)) and (shown[:8, :, 3] == 65535).all()
    with Image.open(out / "a_outpaint_row0_seed5.png") as im:
        assert im.getexif().get(274) == 6
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    _src_tif16_rgb_lzw_icc(imgs)
    args = ["outpaint", "--model", str(tiny_model_dir), "--batch_imgs_dir", str(imgs), "--right", "8",
            "--output_dir", str(tmp_path / "b"), *FAST, "--record"]
    assert main(args) == 0
    line = json.loads((tmp_path / "b" / "manifest.jsonl").read_text().splitlines()[0])
    assert line["record"] == str(tmp_path / "b" / "a_outpaint_record.json")
    assert tifffile.imread(tmp_path / "b" / "a_outpaint_row0_seed5.tif").shape == (H, W + 8, 3)
    capsys.readouterr()
    assert main(args) == 0
    assert "0 written, 1 skipped" in capsys.readouterr().err
    src, _, _ = _src_tif_cmyk(tmp_path)
    assert main(["outpaint", "--model", "/nonexistent/model", "--image", str(src), "--left", "8",
                 "--output_format", "png", "--output", str(tmp_path / "c" / "x.png")]) != 0
    assert "CMYK cannot be written as PNG" in capsys.readouterr().err


def test_upright_master_is_stored_as_displayed_without_its_orientation(tmp_path):
    """What defect's dataset items are written as: a rotated master stored upright, Orientation gone."""
    from inpaint_kit.images import write_image

    src, stored, _ = _src_png16_rgba_icc_exif6(tmp_path)
    master = read_image(src)
    up = master.upright()
    assert up.orientation == 1 and up.exif is None and b"eXIf" not in [k for k, _ in up.png_chunks]
    assert np.array_equal(up.pixels, orient(stored, 6)) and up.icc == master.icc and "upright" in up.notes[-1]
    path = write_image(tmp_path / "u.png", up.pixels, up.mode, up, "png")
    with Image.open(path) as im:
        assert 274 not in im.getexif() and im.size == (W, H)
    assert master.upright() is not master and up.upright() is up
