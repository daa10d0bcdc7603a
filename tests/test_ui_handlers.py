"""The browser UI's handlers (inpaint_kit/ui/handlers.py) on real models, without a browser: the same
inputs give exactly the files ``inpaint-kit infer`` / ``outpaint`` write (pixels and metadata), painted
strokes act as a mask file would, engines are cached, and bad input is one readable line before any model
loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.images import load_image, read_metadata
from inpaint_kit.ui import handlers

FAST = {"steps": 2, "size": 64, "rows": 2, "seed": 3}
BOX = (10, 12, 26, 40)  # top, left, bottom, right of the repair region
# What the page sends besides FAST: every control's value, as gradio hands them over.
PAGE = {"prompt": "", "negative_prompt": "", "guidance": 5.0, "lora": "", "lora_scale": 1.0, "scheduler": "default",
        "area": "auto", "padding": 64, "mask_dilate": 0, "mask_blur": 0}


def _photo(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 4, y * 5, (x + y) % 256], -1)
    return np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def files(tmp_path):
    Image.fromarray(_photo()).save(tmp_path / "mural.png")
    t, l, b, r = BOX
    for mode, repair in (("black", 0), ("white", 255)):
        m = np.full((40, 56), 255 - repair, np.uint8)
        m[t:b, l:r] = repair
        Image.fromarray(m).save(tmp_path / f"mask_{mode}.png")
    return tmp_path


def _cli_args(settings: dict) -> list[str]:
    return [f"--{k}={v}" for k, v in settings.items()]


def _strokes(hw=(40, 56)) -> np.ndarray:
    """An RGBA layer as the editor returns it: brush colour with alpha where painted, plus a patch painted
    and then erased (alpha 0, colour left behind) that must not count."""
    layer = np.zeros((*hw, 4), np.uint8)
    t, l, b, r = BOX
    layer[t:b, l:r] = (255, 0, 255, 255)
    layer[0:5, 0:5, :3] = (255, 0, 255)  # erased: colour without alpha
    return layer


@pytest.mark.parametrize("source", ["mask file black", "mask file white", "painted"])
def test_restore_gives_the_cli_files(tmp_path, files, source):
    cache = handlers.EngineCache()
    mode = "white" if source.endswith("white") else "black"
    mask_file = files / f"mask_{mode}.png"
    kwargs = {"layers": [_strokes()]} if source == "painted" else {"mask_path": str(mask_file)}
    run = handlers.restore(cache, tmp_path / "ui", str(files / "mural.png"), mask_mode=mode, progress=False,
                           model="builtin", **FAST, **PAGE, **kwargs)

    cli_out = tmp_path / "cli" / "mural_collage.png"
    assert main(["infer", "--model", "builtin", "--image", str(files / "mural.png"), "--mask", str(mask_file),
                 "--mask_mode", mode, "--output", str(cli_out), "--save_rows", *_cli_args(FAST)]) == 0
    assert [p.name for p in run.rows] == ["mural_row0_seed3.png", "mural_row1_seed4.png"]
    for ui_file in [run.collage, *run.rows]:
        cli_file = cli_out.parent / ui_file.name
        assert np.array_equal(load_image(ui_file), load_image(cli_file))
        ui_meta, cli_meta = read_metadata(ui_file), read_metadata(cli_file)
        sources = ("image", "mask", "inputs_sha256")
        assert {k: v for k, v in ui_meta.items() if k not in sources} == \
               {k: v for k, v in cli_meta.items() if k not in sources}
        assert ui_meta["image"] == "mural.png"
        assert ui_meta["mask"] == (handlers.PAINTED if source == "painted" else mask_file.name)
        # the uploads' hashes, as the CLI's of its files; a painted mask is no file
        painted = {"mask"} if source == "painted" else set()
        assert ui_meta["inputs_sha256"] == {k: v for k, v in cli_meta["inputs_sha256"].items() if k not in painted}
    photo = _photo()
    t, l, b, r = BOX
    inside = np.zeros((40, 56), bool)
    inside[t:b, l:r] = True
    for result in run.results:
        assert np.array_equal(result[~inside], photo[~inside])  # the erased patch stayed untouched
    assert run.seeds == [3, 4] and cache.loads == 1


def test_restore_on_an_sd_model_with_a_prompt_gives_the_cli_pixels(tmp_path, files, tiny_model_dir):
    settings = {**FAST, "prompt": "old plaster", "negative_prompt": "blur", "guidance": 3.0}
    run = handlers.restore(handlers.EngineCache(), tmp_path / "ui", str(files / "mural.png"),
                           str(files / "mask_black.png"), progress=False, model=str(tiny_model_dir),
                           **{**PAGE, **settings})
    out = tmp_path / "cli" / "mural_collage.png"
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(files / "mural.png"), "--mask",
                 str(files / "mask_black.png"), "--output", str(out), "--save_rows", *_cli_args(settings)]) == 0
    for ui_file in run.rows:
        assert np.array_equal(load_image(ui_file), load_image(out.parent / ui_file.name))
    assert read_metadata(run.rows[0])["prompt"] == "old plaster"


def test_strokes_and_mask_file_add_up(tmp_path, files):
    layer = np.zeros((40, 56, 4), np.uint8)
    layer[30:36, 2:8, 3] = 255
    image, mask, sources = handlers.read_inputs(str(files / "mural.png"), str(files / "mask_black.png"), [layer])
    t, l, b, r = BOX
    assert mask[t:b, l:r].all() and mask[30:36, 2:8].all()
    assert mask.sum() == (b - t) * (r - l) + 36
    assert sources == {"image": "mural.png", "mask": f"mask_black.png + {handlers.PAINTED}"}


def test_painted_layers_of_another_size_never_lose_a_stroke():
    layer = np.zeros((20, 28, 4), np.uint8)
    layer[5, 7, 3] = 1  # one faint, antialiased pixel at half the image's size
    mask = handlers.painted_mask([layer, None], (40, 56))
    assert mask.shape == (40, 56) and mask[10:12, 14:16].all() and mask.sum() == 4


def test_outpaint_gives_the_cli_files(tmp_path, files):
    settings = {**FAST, "mask_blur": 8, "fill": "edge", "overlap": 64, "max_step": 256}
    run = handlers.outpaint(handlers.EngineCache(), tmp_path / "ui", str(files / "mural.png"), progress=False,
                            left=0, right=24, up=0, down=8, model="builtin", prompt="", negative_prompt="",
                            guidance=5.0, lora="", lora_scale=1.0, scheduler="default", **settings)
    out = tmp_path / "cli" / "mural_outpaint.png"
    assert main(["outpaint", "--model", "builtin", "--image", str(files / "mural.png"), "--right", "24",
                 "--down", "8", "--output", str(out), "--save_rows", *_cli_args(settings)]) == 0
    assert run.collage.name == "mural_outpaint.png"
    for ui_file in [run.collage, *run.rows]:
        assert np.array_equal(load_image(ui_file), load_image(out.parent / ui_file.name))
        ui_meta, cli_meta = read_metadata(ui_file), read_metadata(out.parent / ui_file.name)
        assert ui_meta.pop("image") == "mural.png" and cli_meta.pop("image") == str(files / "mural.png")
        assert ui_meta == cli_meta
    assert run.results[0].shape == (48, 80, 3)
    assert np.array_equal(run.results[0][:40, :56], _photo())


def test_engine_cache_loads_once_per_model_and_lora_choice(tiny_model_dir):
    from inpaint_kit.inpaint import InferConfig

    cache = handlers.EngineCache(capacity=1)
    builtin = cache.get(InferConfig(model="builtin"))
    assert cache.get(InferConfig(model="builtin", lora_scale=0.5)) is builtin  # no LoRA: the scale is moot
    assert cache.get(InferConfig(model="builtin", prompt="x", steps=3)) is builtin  # sampling is per request
    assert cache.loads == 1
    cache.get(InferConfig(model=str(tiny_model_dir)))
    assert cache.loads == 2 and len(cache.engines) == 1  # capacity 1: builtin dropped
    assert cache.get(InferConfig(model="builtin")) is not builtin and cache.loads == 3


@pytest.mark.parametrize("case, message", [
    ("not an image", "notes.png: not a readable image"),
    ("empty mask file", "the mask is empty: mask_white.png (--mask_mode black) marks nothing to repair"),
    ("nothing painted", "the mask is empty: paint over the damage"),
    ("absurd size", "size 100000 is outside what the UI allows (64..2048)"),
    ("too many rows", "rows 500 is outside what the UI allows (1..16)"),
    ("negative seed", "--seed -1 must be >= 0"),
    ("no image", "no image: upload an image file first"),
    ("empty field", "steps is empty; enter a value"),
])
def test_bad_input_is_one_line_before_any_model_loads(tmp_path, files, case, message):
    (files / "notes.png").write_text("not a picture")
    image, mask, settings = str(files / "mural.png"), None, dict(FAST)
    if case == "not an image":
        image = str(files / "notes.png")
    elif case == "empty mask file":
        Image.fromarray(np.full((40, 56), 255, np.uint8)).save(files / "mask_white.png")
        mask = str(files / "mask_white.png")
    elif case == "absurd size":
        settings["size"] = 100000
    elif case == "too many rows":
        settings["rows"] = 500
    elif case == "negative seed":
        settings["seed"] = -1
    elif case == "no image":
        image = None
    elif case == "empty field":
        settings["steps"] = None
    cache = handlers.EngineCache()
    with pytest.raises(InpaintKitError) as e:
        handlers.restore(cache, tmp_path / "ui", image, mask, progress=False, model="builtin", **settings)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert cache.loads == 0 and not (tmp_path / "ui").exists()


def test_outpaint_refuses_an_absurd_canvas_before_loading(tmp_path, files):
    cache = handlers.EngineCache()
    with pytest.raises(InpaintKitError, match="exceeds the canvas limit"):
        handlers.outpaint(cache, tmp_path / "ui", str(files / "mural.png"), progress=False, model="builtin",
                          left=9000, **FAST)
    with pytest.raises(InpaintKitError, match="no direction given"):
        handlers.outpaint(cache, tmp_path / "ui", str(files / "mural.png"), progress=False, model="builtin",
                          left=0, right=0, up=0, down=0, **FAST)
    assert cache.loads == 0


def test_page_errors_are_messages_not_tracebacks():
    gr = pytest.importorskip("gradio")
    from inpaint_kit.ui.app import readable

    @readable
    def user_mistake():
        raise InpaintKitError("mural.png: not a readable image; re-export it as PNG or JPEG")

    @readable
    def bug():
        raise RuntimeError("shapes (3,) and (4,) differ")

    with pytest.raises(gr.Error) as e:
        user_mistake()
    assert e.value.message == "mural.png: not a readable image; re-export it as PNG or JPEG"
    with pytest.raises(gr.Error) as e:
        bug()
    assert e.value.message == "RuntimeError: shapes (3,) and (4,) differ (details in the server's log)"


def test_model_and_lora_choices_list_what_is_under_weights(tmp_path, tiny_model_dir):
    import shutil

    weights = tmp_path / "weights"
    shutil.copytree(tiny_model_dir, weights / "sd-tiny")
    (weights / "run1" / "lora").mkdir(parents=True)
    (weights / "run1" / "lora" / "lora_unet.safetensors").write_bytes(b"")
    (weights / "notes").mkdir()
    assert handlers.model_choices(weights, ("org/model",)) == ["builtin", "org/model", str(weights / "sd-tiny")]
    assert handlers.lora_choices(weights) == ["", str(weights / "run1" / "lora")]


def test_app_builds_with_the_server_settings(tmp_path):
    pytest.importorskip("gradio")
    from inpaint_kit.ui.app import build_app

    app = build_app(handlers.EngineCache(), model="builtin", device="cpu", output_dir=tmp_path, weights_dir=tmp_path)
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert {"restore-image", "restore-editor", "restore-mask", "restore-run", "restore-gallery", "restore-steps",
            "outpaint-image", "outpaint-run", "outpaint-gallery"} <= ids


@pytest.mark.parametrize("argv, message", [
    (["--port", "0"], "--port 0 is not a port number"),
    (["--device", "gpu0"], "--device 'gpu0' is not a device name"),
    (["--threads", "0"], "--threads must be >= 1"),
])
def test_ui_command_refuses_bad_flags_in_one_line_without_serving(capsys, argv, message):
    assert main(["ui", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_results_view_shows_original_then_candidates_and_compares_the_clicked_one(tmp_path, files):
    pytest.importorskip("gradio")
    from types import SimpleNamespace

    from inpaint_kit.ui.app import select, show

    run = handlers.restore(handlers.EngineCache(), tmp_path / "ui", str(files / "mural.png"),
                           str(files / "mask_black.png"), progress=False, model="builtin", **FAST)
    status, gallery, slider, collage, downloads, state = show(run)
    assert "2 candidate(s), 56x40, seeds 3, 4" in status
    assert [caption for _, caption in gallery] == ["original", "seed 3", "seed 4"]
    assert [Path(p).name for p in downloads] == [  # the rows, the conservator's record, the collage
        "mural_row0_seed3.png", "mural_row1_seed4.png", "mural_fill_row0_seed3.png", "mural_fill_row1_seed4.png",
        "mural_mask.png", "mural_record.json", "mural_collage.png"]
    assert collage == str(run.collage) and slider[1] is run.results[0]
    before, after = select(state, SimpleNamespace(index=2))  # click "seed 4"
    assert np.array_equal(before, _photo()) and after is run.results[1]
    assert select(state, SimpleNamespace(index=0))[1] is run.results[0]  # the original: compare with the first


def test_a_16bit_tiff_upload_gives_16bit_tiff_rows_and_the_record_in_the_downloads(tmp_path, files):
    """An archive master uploaded to the page comes back as drop-in replacements (16-bit TIFF, its profile),
    restored and outpainted, with the conservator's record among the files; a JPEG upload gives PNG rows and
    the page says why."""
    import json

    import imagecodecs
    import tifffile

    from inpaint_kit.record import sha256

    wide = imagecodecs.cms_profile("adobergb")
    rng = np.random.default_rng(1)
    px = (_photo().astype(np.uint16) * 257 + rng.integers(0, 257, (40, 56, 3))).astype(np.uint16)
    upload = tmp_path / "master.tif"
    tifffile.imwrite(upload, px, photometric="rgb", compression="lzw", iccprofile=wide, resolution=(600, 600),
                     resolutionunit="INCH", metadata=None)
    t, l, b, r = BOX
    inside = np.zeros((40, 56), bool)
    inside[t:b, l:r] = True
    cache = handlers.EngineCache()
    run = handlers.restore(cache, tmp_path / "ui", str(upload), str(files / "mask_black.png"), progress=False,
                           model="builtin", **FAST, **PAGE)
    assert [p.name for p in run.rows] == ["master_row0_seed3.tif", "master_row1_seed4.tif"]
    for path in run.rows:
        with tifffile.TiffFile(path) as tf:
            row, icc = tf.pages.first.asarray(), tf.pages.first.tags[34675].value
        assert row.dtype == np.uint16 and icc == wide and np.array_equal(row[~inside], px[~inside])
    assert sorted(p.name for p in run.record) == ["master_fill_row0_seed3.tif", "master_fill_row1_seed4.tif",
                                                  "master_mask.png", "master_record.json"]
    rec = json.loads((run.folder / "master_record.json").read_text())
    assert rec["input"]["sha256"] == sha256(upload) and rec["input"]["source"] == "master.tif"
    assert rec["mask"]["given"] == {"source": "mask_black.png"}
    assert "rows: 16-bit RGB TIFF, as the upload" in run.summary()

    out = handlers.outpaint(cache, tmp_path / "ui", str(upload), progress=False, left=0, right=16, up=0, down=0,
                            model="builtin", prompt="", negative_prompt="", guidance=5.0, lora="", lora_scale=1.0,
                            scheduler="default", **FAST)
    assert [p.name for p in out.rows] == ["master_outpaint_row0_seed3.tif", "master_outpaint_row1_seed4.tif"]
    extended = tifffile.imread(out.rows[0])
    assert extended.dtype == np.uint16 and extended.shape == (40, 72, 3) and np.array_equal(extended[:, :56], px)
    assert "master_outpaint_record.json" in [p.name for p in out.record]

    Image.fromarray(_photo()).save(tmp_path / "snap.jpg", quality=90)
    jpeg = handlers.restore(cache, tmp_path / "ui", str(tmp_path / "snap.jpg"), str(files / "mask_black.png"),
                            progress=False, model="builtin", **FAST, **PAGE)
    assert [p.suffix for p in jpeg.rows] == [".png", ".png"]
    assert "rows: 8-bit RGB PNG (lossless: a JPEG upload is never encoded lossily again)" in jpeg.summary()
    if importlib.util.find_spec("gradio") is None:
        return
    from inpaint_kit.ui.app import show

    _, gallery, _, _, downloads, _ = show(run)
    assert [Path(p).name for p in downloads][:2] == ["master_row0_seed3.tif", "master_row1_seed4.tif"]
    assert all(isinstance(item, np.ndarray) for item, _ in gallery)  # TIFF rows shown as their 8-bit view


def test_detect_damage_fills_the_mask_layer_and_keeps_the_strokes(tmp_path):
    from inpaint_kit.detect.detector import detect_mask, load_detector

    from test_detect_cli import scratched

    Image.fromarray(scratched(40, 56, 0)).save(tmp_path / "scan.png")
    image = load_image(tmp_path / "scan.png")
    found = detect_mask(image, load_detector("classical"))
    assert found[20, 10:46].all() and not found[BOX[0]:BOX[2], BOX[1]:BOX[3]].all()
    detectors = handlers.DetectorCache()
    value, note = handlers.detect_damage(detectors, str(tmp_path / "scan.png"), [_strokes()], "classical")
    assert (value["background"] == image).all()
    (layer,) = value["layers"]
    assert layer.shape == (40, 56, 4)
    painted = handlers.painted_mask(value["layers"], (40, 56))
    strokes = handlers.painted_mask([_strokes()], (40, 56))
    assert (painted == (found | strokes)).all()  # the detected damage plus the user's strokes, nothing else
    assert (layer[painted, :3] == (255, 0, 255)).all()
    assert "classical detector" in note and f"{int(found.sum())} pixels" in note
    handlers.detect_damage(detectors, str(tmp_path / "scan.png"), None, "classical")
    assert detectors.loads == 1  # loaded once, reused
    # what Run then repairs is that layer, as a painted mask
    run = handlers.restore(handlers.EngineCache(), tmp_path / "ui", str(tmp_path / "scan.png"), None, value["layers"],
                           model="builtin", progress=False, **FAST, **PAGE)
    row = np.asarray(Image.open(run.rows[0]).convert("RGB"))
    assert (row[~painted] == image[~painted]).all()
    with pytest.raises(InpaintKitError, match=r"^detector \S*nowhere: no such folder"):
        handlers.detect_damage(detectors, str(tmp_path / "scan.png"), None, str(tmp_path / "nowhere"))
