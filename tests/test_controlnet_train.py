"""``train-controlnet`` on the tiny 4-channel preset: zero convolutions, only the ControlNet trains, the
output loads in plain diffusers, resume is exact, the loss falls when overfitting, and the data layouts
(folder, pairs, COCO) draw masks deterministically within the coverage range."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inpaint_kit.cli import main
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.images import save_png
from inpaint_kit.train.controlnet import data as controlnet_data
from inpaint_kit.train.controlnet.trainer import ControlNetTrainer, new_controlnet, train
from inpaint_kit.train.controlnet.config import ControlNetTrainConfig


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from inpaint_kit.presets import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("cnt") / "base", "tiny", seed=0, base=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two 48x40 images in a plain folder (masks generated)."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        save_png(root / f"{name}.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    return root


def _cfg(base, data, out, **kw):
    values = dict(model=str(base), data=str(data), output_dir=str(out), size=32, steps=2, save_every=100,
                  lr=1e-3, progress=False, device="cpu")
    return ControlNetTrainConfig(**{**values, **kw}).validate()


def test_fresh_controlnet_has_zero_residuals(base):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    net = new_controlnet(unet)
    down, mid = net(torch.randn(1, 4, 4, 4), torch.tensor([500]), encoder_hidden_states=torch.randn(1, 77, 32),
                    controlnet_cond=torch.rand(1, 3, 32, 32), return_dict=False)
    assert all(torch.count_nonzero(d) == 0 for d in down) and torch.count_nonzero(mid) == 0
    assert net.config.conditioning_channels == 3 and net.config.in_channels == 4


def test_training_changes_only_the_controlnet_and_diffusers_loads_it(base, folder, tmp_path):
    from diffusers import ControlNetModel, StableDiffusionControlNetInpaintPipeline, UNet2DConditionModel

    trainer = ControlNetTrainer(_cfg(base, folder, tmp_path / "run"))
    frozen = {k: v.clone() for k, v in trainer.unet.state_dict().items()}
    result = trainer.run()
    assert result.step == 2 and result.trainable_params == sum(p.numel() for p in trainer.controlnet.parameters())
    assert all(torch.equal(frozen[k], v) for k, v in trainer.unet.state_dict().items())
    assert not any(p.requires_grad for m in (trainer.unet, trainer.vae, trainer.text_encoder) for p in m.parameters())
    record = json.loads((tmp_path / "run" / "training_config.json").read_text())
    assert record["conditioning"] == "control_v11p_sd15_inpaint" and record["config"]["lr"] == 1e-3

    net = ControlNetModel.from_pretrained(tmp_path / "run", local_files_only=True)
    init = new_controlnet(UNet2DConditionModel.from_pretrained(base / "unet"))
    moved = [k for k, v in net.state_dict().items() if not torch.equal(v, init.state_dict()[k])]
    assert any("controlnet_down_blocks" in k for k in moved)  # the zero convolutions learnt something
    pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(base, controlnet=net, local_files_only=True,
                                                                    safety_checker=None, requires_safety_checker=False)
    from PIL import Image

    im = Image.fromarray(np.full((32, 32, 3), 100, np.uint8))
    out = pipe("", image=im, mask_image=im, control_image=im, height=32, width=32, num_inference_steps=1,
               output_type="np").images
    assert out.shape == (1, 32, 32, 3)


def test_resume_is_exact(base, folder, tmp_path):
    straight = train(_cfg(base, folder, tmp_path / "a", steps=4))
    train(_cfg(base, folder, tmp_path / "b", steps=4, stop_after=2))
    resumed = train(ControlNetTrainConfig.from_options({"output_dir": str(tmp_path / "b"), "resume": "latest",
                                                        "progress": False, "device": "cpu"}))
    assert resumed.step == 4 and resumed.losses == pytest.approx(straight.losses[2:], rel=1e-5)
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / r / "diffusion_pytorch_model.safetensors")) for r in ("a", "b"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_loss_falls_when_overfitting(base, folder, tmp_path):
    """Overfit two fixed micro-batches (same images, masks, noise and timesteps every update) for 24 updates:
    their loss falls by a quarter at least (measured: about a half, for seeds 1-3)."""

    class Fixed(ControlNetTrainer):
        def micro_loss(self, micro):
            return super().micro_loss(micro % 2)

    trainer = Fixed(_cfg(base, folder, tmp_path / "run", steps=24, batch=2))

    def fixed_loss():
        with torch.no_grad():
            return sum(float(trainer.micro_loss(m)) for m in range(2)) / 2

    before = fixed_loss()
    trainer.run()
    after = fixed_loss()
    assert after < 0.75 * before, (before, after)


def test_coverage_masks_stay_in_range_and_draws_are_deterministic(folder, base, tmp_path):
    for seed in range(8):
        m = controlnet_data.coverage_mask(64, 64, np.random.default_rng(seed), 0.1, 0.3)
        assert 0.1 <= m.mean() <= 0.3
    cfg = _cfg(base, folder, tmp_path / "x")
    items = controlnet_data.find_items(cfg)
    a, b = controlnet_data.load_item(items[0], cfg, 5), controlnet_data.load_item(items[0], cfg, 5)
    assert np.array_equal(a["mask"], b["mask"]) and np.array_equal(a["pixels"], b["pixels"])
    assert not np.array_equal(a["mask"], controlnet_data.load_item(items[0], cfg, 6)["mask"])


def test_coco_layout_with_object_masks(folder, base, tmp_path):
    poly = [[4, 4, 40, 4, 40, 30, 4, 30]]  # a 36x26 rectangle as a polygon
    coco = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "missing.png"}],
            "annotations": [{"id": 9, "image_id": 1, "segmentation": poly, "bbox": [4, 4, 36, 26], "iscrowd": 0}]}
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps(coco))
    cfg = _cfg(base, folder, tmp_path / "x", ann_file=str(ann), object_masks=1.0, size=40)
    items = controlnet_data.find_items(cfg)
    assert [i.image.name for i in items] == ["a.png"] and len(items[0].objects) == 1
    mask = controlnet_data.object_mask(items[0].objects[0], 40, 48)
    assert mask[4:31, 4:41].all() and mask.sum() == 27 * 37
    drawn = controlnet_data.load_item(items[0], cfg, 0)["mask"][0].astype(bool)
    assert drawn.sum() == 27 * 37  # the crop at size 40 keeps the whole object (a flip may move it)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InpaintKitError, match="not a COCO instances JSON"):
        controlnet_data.find_items(_cfg(base, folder, tmp_path / "y", ann_file=str(bad)))


def test_bad_settings_are_one_line(base, folder, tiny_model_dir, tmp_path, capsys):
    with pytest.raises(InpaintKitError, match="--mask_coverage 0.5 0.2"):
        _cfg(base, folder, tmp_path / "x", mask_coverage=[0.5, 0.2])
    with pytest.raises(InpaintKitError, match="--object_masks needs --ann_file"):
        _cfg(base, folder, tmp_path / "x", object_masks=0.5)
    assert ControlNetTrainConfig.field_defaults()["lr"] == 1e-5
    rc = main(["train-controlnet", "--model", str(tiny_model_dir), "--image_dir", str(folder), "--output_dir",
               str(tmp_path / "z"), "--size", "32", "--steps", "1", "--no_progress", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "takes 9 input channels" in err[-1]


def test_flags_come_from_the_config():
    from inpaint_kit.cli import build_parser

    args = build_parser().parse_args(["train-controlnet", "--image_dir", "coco/train2017", "--ann_file", "a.json",
                                      "--grad_accum", "3", "--mask_coverage", "0.2", "0.4", "--output_dir", "o"])
    assert (args.data, args.ann_file, args.accum, args.mask_coverage) == ("coco/train2017", "a.json", 3, [0.2, 0.4])
    assert not hasattr(args, "lr")  # left out: the config's default (1e-5) or, on --resume, the run's


def test_pairs_layout_uses_the_given_masks(base, tmp_path):
    (tmp_path / "d" / "imgs").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    save_png(tmp_path / "d" / "imgs" / "a.png", np.full((32, 32, 3), 90, np.uint8))
    given = np.zeros((32, 32), bool)
    given[4:12, 2:30] = True
    save_png(tmp_path / "d" / "masks" / "a.png", np.where(given, 0, 255).astype(np.uint8)[..., None].repeat(3, -1))
    cfg = _cfg(base, tmp_path / "d", tmp_path / "x")
    items = controlnet_data.find_items(cfg)
    assert items[0].mask is not None
    for draw in range(4):  # size 32 = the image: the crop is the whole image, maybe flipped left-right
        m = controlnet_data.load_item(items[0], cfg, draw)["mask"][0].astype(bool)
        assert np.array_equal(m, given) or np.array_equal(m, given[:, ::-1])
    mixed = _cfg(base, tmp_path / "d", tmp_path / "x", mask_source="mixed")
    odd = controlnet_data.load_item(items[0], mixed, 1)["mask"][0].astype(bool)
    assert not (np.array_equal(odd, given) or np.array_equal(odd, given[:, ::-1]))  # odd draws: generated


def test_validation_preview_goes_through_the_infer_engine(base, folder, tmp_path):
    from inpaint_kit.images import load_image, read_metadata

    image = np.random.default_rng(3).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    mask = np.zeros((40, 48), bool)
    mask[10:20, 10:30] = True
    save_png(tmp_path / "v.png", image)
    save_png(tmp_path / "v_mask.png", np.where(mask, 0, 255).astype(np.uint8)[..., None].repeat(3, -1))
    cfg = _cfg(base, folder, tmp_path / "run", steps=1, validate_every=1, validation_image=str(tmp_path / "v.png"),
               validation_mask=str(tmp_path / "v_mask.png"), validation_steps=2)
    train(cfg)
    preview = tmp_path / "run" / "validation" / "step_000001.png"
    out = load_image(preview)
    assert out.shape == image.shape and np.array_equal(out[~mask], image[~mask])
    assert read_metadata(preview)["step"] == 1
    with pytest.raises(InpaintKitError, match="--validate_every needs --validation_image"):
        _cfg(base, folder, tmp_path / "x", validate_every=5)
