"""Preflight (issue 13): every check that can run before a model loads does, in one line, exit 2.

Most cases use ``--model missing_model_dir``: were the model loaded first, the error would name the
model instead of the problem under test."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.images import read_metadata
from inpaint_kit.inpaint import InferConfig, load_pair

FAST = ["--steps", "2", "--size", "64", "--rows", "1", "--seed", "3"]


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    m = np.full((24, 32), 255, np.uint8)
    m[4:12, 8:20] = 0
    Image.fromarray(m).save(tmp_path / "m.png")
    return tmp_path / "a.png", tmp_path / "m.png"


def one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for n in needles:
        assert n in err, err
    return err


MISSING = "no_such_model_dir"


def test_output_dir_that_is_a_file(tmp_path, files, capsys):
    img, mask = files
    (tmp_path / "taken").write_text("a file")
    code = main(["infer", "--model", MISSING, "--batch_imgs_dir", str(tmp_path), "--batch_masks_dir", str(tmp_path),
                 "--output_dir", str(tmp_path / "taken")])
    one_line_error(capsys, code, "--output_dir", "taken", "is a file")
    code = main(["outpaint", "--model", MISSING, "--batch_imgs_dir", str(tmp_path), "--left", "8",
                 "--output_dir", str(tmp_path / "taken" / "sub")])
    one_line_error(capsys, code, "is a file")


def test_output_whose_parent_is_a_file(tmp_path, files, capsys):
    img, mask = files
    (tmp_path / "taken").write_text("a file")
    code = main(["infer", "--model", MISSING, "--image", str(img), "--mask", str(mask),
                 "--output", str(tmp_path / "taken" / "out.png")])
    one_line_error(capsys, code, "--output", "taken is a file")
    code = main(["outpaint", "--model", MISSING, "--image", str(img), "--left", "8", "--output", str(tmp_path)])
    one_line_error(capsys, code, "is a folder")
    code = main(["infer", "--model", "builtin", "--image", str(img), "--mask", str(mask), "--output",
                 str(tmp_path / "o.png"), "--save_intermediates", str(tmp_path / "taken" / "steps")])
    one_line_error(capsys, code, "--save_intermediates", "taken is a file")


def test_output_folder_that_cannot_be_written(tmp_path, files, capsys):
    img, mask = files
    out = tmp_path / "ro"
    out.mkdir()
    # The write probe's own name taken by a folder: writing it fails as on a read-only file system.
    (out / f".inpaint-kit-write-test.{os.getpid()}.tmp").mkdir()
    code = main(["infer", "--model", MISSING, "--image", str(img), "--mask", str(mask), "--output", str(out / "o.png")])
    one_line_error(capsys, code, "cannot be written")


def test_read_only_folder(tmp_path, files, capsys):
    """A folder that refuses new files: a read-only one (chmod 555) for a normal user; as root, whom
    permissions do not stop (CI runs as root), a folder under /sys, where the kernel refuses even root."""
    img, mask = files
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.access(out, os.W_OK):  # root
            if not Path("/sys/kernel").is_dir():
                pytest.skip("running as root without /sys: no folder here refuses root's writes")
            out = Path("/sys/kernel/inpaint-kit-test")
        for cmd in (["infer", "--mask", str(mask)], ["outpaint", "--left", "8"]):
            code = main([*cmd, "--model", MISSING, "--image", str(img), "--output", str(out / "o.png")])
            one_line_error(capsys, code, "cannot be written")
        assert not out.exists()
    finally:
        (tmp_path / "ro").chmod(0o755)


@pytest.mark.parametrize("device, needle", [("gpu0", "not a device name"), ("cuda", "CUDA is not available"),
                                            ("cuda:7", "cuda")])
def test_bad_devices_before_loading(tmp_path, files, capsys, device, needle):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    img, mask = files
    for cmd in (["infer", "--image", str(img), "--mask", str(mask), "--output", str(tmp_path / "o.png")],
                ["outpaint", "--image", str(img), "--left", "8", "--output", str(tmp_path / "o.png")],
                ["eval", "--data", str(tmp_path), "--methods", "telea"]):
        one_line_error(capsys, main([*cmd, "--model", MISSING, "--device", device] if cmd[0] != "eval"
                                    else [*cmd, "--device", device]), needle)


def test_size_over_the_working_canvas_limit(tmp_path, files, capsys):
    img, mask = files
    args = ["infer", "--model", MISSING, "--image", str(img), "--mask", str(mask), "--output", str(tmp_path / "o.png")]
    one_line_error(capsys, main([*args, "--size", "100000"]), "--size 100000", "4.2 MP", "--max_work_megapixels")
    one_line_error(capsys, main([*args, "--size", "1024", "--max_work_megapixels", "1"]), "--size 1024")
    assert InferConfig(size=2048).validate()  # the documented default limit admits 2048 x 2048
    one_line_error(capsys, main(["outpaint", "--model", MISSING, "--image", str(img), "--left", "8",
                                 "--size", "5000"]), "--size 5000")


@pytest.mark.parametrize("flags, named", [(["--lora", "x.safetensors"], "--lora x.safetensors"),
                                          (["--scheduler", "euler_a"], "--scheduler euler_a"),
                                          (["--prompt", "a cat"], "--prompt a cat"),
                                          (["--lora_scale", "0.5"], "--lora_scale 0.5")])
def test_sd_flags_with_the_builtin_engine(tmp_path, files, capsys, flags, named):
    img, mask = files
    code = main(["infer", "--model", "builtin", "--image", str(img), "--mask", str(mask),
                 "--output", str(tmp_path / "o.png"), *flags])
    one_line_error(capsys, code, named, "builtin")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("flags, named", [(["--sampler", "ddim"], "--sampler ddim"),
                                          (["--init", "telea"], "--init telea"),
                                          (["--jump_length", "3"], "--jump_length 3")])
def test_ddpm_flags_with_an_sd_model(tmp_path, files, capsys, tiny_model_dir, flags, named):
    img, mask = files
    code = main(["infer", "--model", str(tiny_model_dir), "--image", str(img), "--mask", str(mask),
                 "--output", str(tmp_path / "o.png"), *flags])
    one_line_error(capsys, code, named, "Stable Diffusion")


def test_metadata_records_only_what_the_engine_used(tmp_path, files):
    img, mask = files
    assert main(["infer", "--model", "builtin", "--image", str(img), "--mask", str(mask),
                 "--output", str(tmp_path / "o.png"), *FAST]) == 0
    meta = read_metadata(tmp_path / "o.png")
    assert meta["engine"] == "ddpm" and not {"lora", "lora_scale", "scheduler", "ddpm", "guidance"} & set(meta)


def test_eval_and_tiny_model_outputs_checked_first(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    code = main(["eval", "--data", str(tmp_path), "--methods", "telea", "--output", str(tmp_path / "taken" / "s.md")])
    one_line_error(capsys, code, "taken is a file")
    code = main(["tiny-model", "--output_dir", str(tmp_path / "taken")])
    one_line_error(capsys, code, "is a file")
    code = main(["tiny-model", "--output_dir", str(tmp_path / "taken" / "m")])
    one_line_error(capsys, code, "taken is a file")


# --- image-size limits and alpha masks ------------------------------------------------------------

def test_our_megapixel_limit_decides_not_pillows(tmp_path, files, monkeypatch):
    """Pillow refuses images over its own MAX_IMAGE_PIXELS (89.5 MP warning, twice that an error); the
    README's limit (--max_image_megapixels, default 100) must be the one that applies. A 95 MP file is
    too slow for a unit test, so Pillow's threshold is lowered under the image instead."""
    img, mask = files
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 24 x 32 = 768 pixels: "a bomb" to Pillow
    image, repair = load_pair(img, mask, "black")
    assert image.shape == (24, 32, 3) and repair.sum() == 8 * 12
    assert Image.MAX_IMAGE_PIXELS == 100  # restored after each read
    from inpaint_kit.errors import InpaintKitError

    with pytest.raises(InpaintKitError, match=r"over the 0.0005 MP limit.*--max_image_megapixels"):
        load_pair(img, mask, "black", max_megapixels=0.0005)


def test_max_image_megapixels_flag(tmp_path, files, capsys):
    img, mask = files
    code = main(["infer", "--model", "builtin", "--image", str(img), "--mask", str(mask), "--output",
                 str(tmp_path / "o.png"), "--max_image_megapixels", "0.0001", *FAST])
    one_line_error(capsys, code, "a.png", "0.0001 MP limit")


def test_alpha_only_mask_is_honoured(tmp_path, files):
    img, _ = files
    rgba = np.zeros((24, 32, 4), np.uint8)  # black everywhere: its colour alone means "repair everything"
    rgba[5:9, 10:20, 3] = 255  # strokes painted on a transparent layer
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    for mode in ("black", "white"):
        _, repair = load_pair(img, tmp_path / "alpha.png", mode)
        expected = np.zeros((24, 32), bool)
        expected[5:9, 10:20] = True
        assert np.array_equal(repair, expected)
    # Transparent pixels with another colour (exporters that zero them) do not change this.
    rgba[..., :3] = 255
    rgba[5:9, 10:20, :3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha2.png")
    assert load_pair(img, tmp_path / "alpha2.png", "black")[1].sum() == 40
    # An ordinary mask with an opaque alpha channel still follows --mask_mode.
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    assert load_pair(img, tmp_path / "opaque.png", "black")[1].sum() == 40
    assert load_pair(img, tmp_path / "opaque.png", "white")[1].sum() == 24 * 32 - 40



# --- one vocabulary: new names, old spellings still accepted ------------------------------------

@pytest.mark.parametrize("argv, dest, value", [
    (["eval", "--data", "d"], "data", "d"), (["eval", "--images", "d"], "data", "d"),
    (["eval", "--data", "d", "--out", "s.md"], "output", "s.md"),
    (["tiny-model", "--out", "m"], "output_dir", "m"), (["tiny-model", "--output_dir", "m"], "output_dir", "m"),
    (["outpaint", "--mask_blur", "3"], "seam_blend", 3), (["outpaint", "--seam_blend", "3"], "seam_blend", 3),
    (["infer", "--out", "o"], "output_dir", "o"),
])
def test_old_spellings_are_hidden_aliases(argv, dest, value):
    from inpaint_kit.cli import build_parser

    assert getattr(build_parser().parse_args(argv), dest) == value


def test_help_shows_one_name(capsys):
    with pytest.raises(SystemExit):
        main(["outpaint", "--help"])
    text = capsys.readouterr().out
    assert "--seam_blend" in text and "--mask_blur" not in text and "--max_work_megapixels" in text


def test_required_flag_given_by_its_alias_or_missing(capsys):
    assert main(["tiny-model"]) == 2
    assert "required: --output_dir" in capsys.readouterr().err


def test_output_dir_places_the_single_image_default_and_output_is_refused_in_batch(tmp_path, files, capsys):
    img, mask = files
    assert main(["infer", "--model", "builtin", "--image", str(img), "--mask", str(mask),
                 "--output_dir", str(tmp_path / "here"), "--no_progress", *FAST]) == 0
    assert (tmp_path / "here" / "a_collage.png").is_file()
    capsys.readouterr()
    code = main(["infer", "--model", MISSING, "--batch_imgs_dir", str(tmp_path), "--batch_masks_dir", str(tmp_path),
                 "--output", str(tmp_path / "x.png")])
    one_line_error(capsys, code, "--output names one file")


def test_load_engine_refuses_the_other_engines_options(tiny_model_dir):
    from inpaint_kit.engine import load_engine
    from inpaint_kit.engine.options import DDPMOptions, SDOptions
    from inpaint_kit.errors import UsageError

    with pytest.raises(UsageError, match="takes DDPMOptions, not SDOptions"):
        load_engine("builtin", options=SDOptions(lora="x"))
    with pytest.raises(UsageError, match="takes SDOptions, not DDPMOptions"):
        load_engine(str(tiny_model_dir), options=DDPMOptions(sampler="ddim"))
    with pytest.raises(TypeError):  # nothing silently ignored
        load_engine("builtin", options=DDPMOptions(lora="x"))
