"""DefectFill data: both layouts parse, references are chosen reproducibly, masks and adjusted masks, and a
broken layout is a one-line error naming what is missing (no torch, no model)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.train.defect import data
from inpaint_kit.train.defect.config import DefectTrainConfig
from inpaint_kit.errors import InpaintKitError


@pytest.fixture
def mvtec(tmp_path):
    return data.write_fixture(tmp_path / "mvtec", n_defect=5, size=64)


def test_mvtec_layout_pairs_images_with_masks(mvtec):
    layout, refs = data.find_references(mvtec, "bottle", "crack")
    assert layout == "mvtec"
    assert [r.image.name for r in refs] == [f"{i:03d}.png" for i in range(5)]
    assert [r.mask.name for r in refs] == [f"{i:03d}_mask.png" for i in range(5)]
    assert all(r.mask.parent == mvtec / "bottle" / "ground_truth" / "crack" for r in refs)
    assert len(data.good_images(mvtec, "bottle")) == 3


def test_source_layout_is_found_by_auto_and_by_name(tmp_path):
    root = data.write_fixture(tmp_path / "src", layout="source", defect_type="scratch", n_defect=2)
    assert (root / "bottle" / "train" / "defective" / "scratch" / "000.png").is_file()
    assert (root / "bottle" / "train" / "defective_masks" / "scratch" / "000_mask.png").is_file()
    for layout in ("auto", "source"):
        name, refs = data.find_references(root, "bottle", "scratch", layout)
        assert name == "source" and len(refs) == 2
    with pytest.raises(InpaintKitError, match="test/scratch"):
        data.find_references(root, "bottle", "scratch", "mvtec")


def test_num_refs_is_reproducible_and_seed_dependent(mvtec):
    _, refs = data.find_references(mvtec, "bottle", "crack")
    a = data.choose_references(refs, 2, seed=1)
    assert a == data.choose_references(refs, 2, seed=1)
    assert len(a) == 2 and a == sorted(a, key=lambda r: r.image.name)
    picks = {tuple(r.image.name for r in data.choose_references(refs, 2, seed=s)) for s in range(10)}
    assert len(picks) > 1  # the seed decides which ones
    assert data.choose_references(refs, 0, seed=1) == refs
    with pytest.raises(InpaintKitError, match="--num_refs 9: only 5"):
        data.choose_references(refs, 9, seed=1)


def test_broken_layouts_are_one_line_errors(mvtec):
    with pytest.raises(InpaintKitError, match="--object_class cable: no folder .*objects here: bottle"):
        data.find_references(mvtec, "cable", "crack")
    with pytest.raises(InpaintKitError, match="--defect_type hole: .*defect types of bottle: crack"):
        data.find_references(mvtec, "bottle", "hole")
    (mvtec / "bottle" / "ground_truth" / "crack" / "003_mask.png").unlink()
    with pytest.raises(InpaintKitError, match="003.png: no mask"):
        data.find_references(mvtec, "bottle", "crack")
    shutil.rmtree(mvtec / "bottle" / "ground_truth")
    with pytest.raises(InpaintKitError, match="ground_truth/crack: missing"):
        data.find_references(mvtec, "bottle", "crack")


def test_cli_reports_a_broken_layout_in_one_line_before_any_model(mvtec, tmp_path, capsys):
    code = main(["train-defect", "--data", str(mvtec), "--object_class", "bottle", "--defect_type", "hole",
                 "--output_dir", str(tmp_path / "run"), "--model", str(tmp_path / "no-such-model")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--defect_type hole" in err


def test_reference_is_resized_and_thin_masks_survive(tmp_path, mvtec):
    _, refs = data.find_references(mvtec, "bottle", "crack")
    image, mask = data.load_reference(refs[0], 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert mask.shape == (32, 32) and mask.dtype == bool and mask.any()
    # a 1-pixel scratch at 64 px is still there at 16 px
    thin = np.zeros((64, 64), np.uint8)
    thin[31, 5:60] = 255
    Image.fromarray(thin).save(refs[0].mask)
    _, small = data.load_reference(refs[0], 16)
    assert small[7, 2:14].all() and small.sum() == small[7].sum()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(refs[0].mask)
    with pytest.raises(InpaintKitError, match="000_mask.png: no white"):
        data.load_reference(refs[0], 16)


def test_adjusted_mask_covers_the_defect_and_is_seeded():
    defect = np.zeros((64, 64), bool)
    defect[40:44, 10:50] = True
    for s in range(20):
        adj = data.adjusted_mask(defect, np.random.default_rng(s))
        assert adj[defect].all() and adj.sum() > defect.sum()
    a = data.adjusted_mask(defect, np.random.default_rng(3))
    assert np.array_equal(a, data.adjusted_mask(defect, np.random.default_rng(3)))
    assert not np.array_equal(a, data.adjusted_mask(defect, np.random.default_rng(4)))


def test_training_example_is_a_function_of_seed_and_draw(mvtec):
    _, refs = data.find_references(mvtec, "bottle", "crack")
    a = data.training_example(refs, 64, seed=1, draw=3)
    b = data.training_example(refs, 64, seed=1, draw=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["pixels"].shape == (3, 64, 64) and a["mask"].shape == a["adjusted"].shape == (1, 64, 64)
    assert a["pixels"].min() >= -1 and a["pixels"].max() <= 1
    assert (a["adjusted"][a["mask"] > 0] == 1).all()
    # one epoch visits every reference once
    assert sorted(data.draw_index(1, d, 5) for d in range(5)) == list(range(5))


def test_config_prompts_and_token_variants():
    base = dict(data="d", output_dir="o", object_class="metal_nut", defect_type="color")
    cfg = DefectTrainConfig(**base).validate()
    assert (cfg.defect_prompt, cfg.object_prompt) == ("A photo of sks", "A metal nut with sks")
    cfg = DefectTrainConfig(**base, token="defect_type").validate()
    assert cfg.object_prompt == "A metal nut with color"
    assert DefectTrainConfig(**base, size=512).attention_side == 16
    for bad, msg in [({"token": "two words"}, "--token"), ({"lambda_attn": -1}, "--lambda_attn"),
                     ({"attn_res": 99, "size": 64}, "--attn_res 99"), ({"object_class": ""}, "--object_class")]:
        with pytest.raises(InpaintKitError, match=msg):
            DefectTrainConfig(**{**base, **bad}).validate()


def test_reference_masks_painted_in_the_alpha_channel_are_read(mvtec, tmp_path):
    """A reference mask painted on a transparent layer (black strokes, alpha = the defect) is the defect, as
    at inference (masks.read_mask); read as grey alone it would hold no white pixel and be refused."""
    _, refs = data.find_references(mvtec, "bottle", "crack")
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[20:30, 10:50, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha_mask.png")
    _, mask = data.load_reference(data.Reference(refs[0].image, tmp_path / "alpha_mask.png"), 32)
    expected = np.zeros((32, 32), bool)
    expected[10:15, 5:25] = True
    assert np.array_equal(mask, expected)


def test_lora_flags_are_spelled_as_in_train_lora_and_old_spellings_still_work(capsys):
    from inpaint_kit.cli import build_parser
    from inpaint_kit.commands.training import config_from_args

    parser = build_parser()
    base = ["train-defect", "--data", "d", "--object_class", "bottle", "--defect_type", "crack", "--output_dir", "o"]
    for flags in (["--rank", "4", "--alpha", "2"], ["--lora_rank", "4", "--lora_alpha", "2"]):
        cfg = config_from_args(DefectTrainConfig, parser.parse_args(base + flags))
        assert (cfg.lora_rank, cfg.lora_alpha, cfg.alpha) == (4, 2.0, 2.0)
    for command in ("train-defect", "train-lora"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        shown = capsys.readouterr().out
        assert "--rank RANK" in shown and "--alpha ALPHA" in shown and "--lora_rank" not in shown
    with pytest.raises(InpaintKitError, match="--rank 0: must be at least 1"):
        DefectTrainConfig(data="d", object_class="bottle", defect_type="crack", output_dir="o", lora_rank=0).validate()
    cfg = DefectTrainConfig(data="d", object_class="bottle", defect_type="crack", output_dir="o")
    assert cfg.flag_text("lora_rank", 8) == "--rank 8"  # how a resumed run names it
