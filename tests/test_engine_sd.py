"""The SD engine on the tiny random-weight preset: row guarantee, CFG skip, schedulers, LoRA and partial
fine-tunes, and one-line errors for every way a model or LoRA can fail to load."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from inpaint_kit.engine import Sampling, load_engine
from inpaint_kit.engine.sd import SCHEDULERS, SDEngine, build_scheduler, load_sd_engine, resolve_device_dtype
from inpaint_kit.errors import InpaintKitError

FAST = Sampling(steps=2)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return load_sd_engine(str(tiny_model_dir))


@pytest.fixture(scope="module")
def canvas():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    mask = np.zeros((64, 48), bool)
    mask[12:44, 8:36] = True
    return image, mask


def max_diff(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def test_rows_are_the_same_alone_or_batched(engine, canvas):
    image, mask = canvas
    batch = engine.inpaint(image, mask, [10, 11, 12], FAST, progress=False)
    assert [r.shape for r in batch] == [(64, 48, 3)] * 3 and all(r.dtype == np.uint8 for r in batch)
    for i, seed in enumerate([10, 11, 12]):
        alone = engine.inpaint(image, mask, [seed], FAST, progress=False)[0]
        assert max_diff(alone, batch[i]) <= 1
    assert max_diff(batch[0], batch[1]) > 10  # different seeds, different rows


def test_each_row_may_bring_its_own_image_in_one_batched_call(engine, canvas):
    image, mask = canvas
    other = 255 - image
    batch = engine.inpaint([image, other], mask, [10, 11], FAST, progress=False)
    batched_calls = engine.last_info["unet_evaluations"]
    assert max_diff(batch[0], engine.inpaint(image, mask, [10], FAST, progress=False)[0]) <= 1
    assert batched_calls == engine.last_info["unet_evaluations"]  # both rows in the work of one
    assert max_diff(batch[1], engine.inpaint(other, mask, [11], FAST, progress=False)[0]) <= 1
    with pytest.raises(ValueError, match="per-row images"):
        engine.inpaint([image], mask, [1, 2], FAST, progress=False)


def test_rows_match_with_a_scheduler_that_adds_noise_every_step(tiny_model_dir, canvas):
    image, mask = canvas
    eng = load_sd_engine(str(tiny_model_dir), scheduler="euler_a")
    assert eng.describe()["scheduler_class"] == "EulerAncestralDiscreteScheduler"
    batch = eng.inpaint(image, mask, [3, 4, 5], Sampling(steps=3), progress=False)
    alone = eng.inpaint(image, mask, [5], Sampling(steps=3), progress=False)[0]
    assert max_diff(alone, batch[2]) <= 1


def test_empty_prompts_skip_guidance_with_the_same_output_at_half_the_unet_rows(engine, canvas):
    image, mask = canvas
    sampling = Sampling(steps=2, guidance=7.5)
    skipped = engine.inpaint(image, mask, [1, 2], sampling, progress=False)
    info = dict(engine.last_info)
    assert info["cfg_skipped"] and engine.describe()["cfg_skipped"] is True
    assert info["unet_rows"] == 2 * info["unet_evaluations"]  # 2 rows, no doubling
    engine.skip_noop_cfg = False
    try:
        guided = engine.inpaint(image, mask, [1, 2], sampling, progress=False)
    finally:
        engine.skip_noop_cfg = True
    assert not engine.last_info["cfg_skipped"]
    assert engine.last_info["unet_rows"] == 4 * engine.last_info["unet_evaluations"]  # CFG doubles the batch
    assert max(max_diff(a, b) for a, b in zip(skipped, guided)) <= 1


def test_a_prompt_keeps_guidance(engine, canvas):
    image, mask = canvas
    engine.inpaint(image, mask, [1], Sampling(steps=2, prompt="the fresco"), progress=False)
    assert engine.last_info["cfg_skipped"] is False
    assert engine.last_info["unet_rows"] == 2 * engine.last_info["unet_evaluations"]


@pytest.mark.parametrize("name", [s for s in SCHEDULERS if s != "default"])
def test_every_scheduler_runs(engine, canvas, name):
    image, mask = canvas
    default = engine.pipe.scheduler
    engine.pipe.scheduler = build_scheduler(name, default.config)
    try:
        rows = engine.inpaint(image, mask, [1, 2], FAST, progress=False)
    finally:
        engine.pipe.scheduler = default
    assert len(rows) == 2 and rows[0].shape == (64, 48, 3)


def test_unknown_scheduler_and_dtype_list_the_choices(tiny_model_dir):
    with pytest.raises(ValueError, match="default, ddim, dpmpp_2m, euler_a"):
        load_sd_engine(str(tiny_model_dir), scheduler="heun2")
    with pytest.raises(ValueError, match="auto, fp32, fp16, bf16"):
        resolve_device_dtype(None, "fp8")
    assert resolve_device_dtype("cpu", "auto")[:2] == ("cpu", "fp32")
    assert resolve_device_dtype("cpu", "bf16")[2] is torch.bfloat16


def test_describe_names_the_model_and_settings(engine, tiny_model_dir):
    d = engine.describe()
    assert {k: d[k] for k in ("model", "scheduler", "scheduler_class", "lora", "dtype", "device")} == {
        "model": str(tiny_model_dir), "scheduler": "default", "scheduler_class": "PNDMScheduler",
        "lora": None, "dtype": "fp32", "device": "cpu"}
    assert engine.multiple == 8 and isinstance(load_engine(str(tiny_model_dir)), SDEngine)


def test_bad_canvas_is_refused(engine, canvas):
    image, mask = canvas
    with pytest.raises(ValueError, match="multiples of 8"):
        engine.inpaint(image[:60], mask[:60], [1], FAST, progress=False)


# ---- loading errors ---------------------------------------------------------------------------------


def one_line_error(fn) -> str:
    with pytest.raises(InpaintKitError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_paths_that_are_not_models(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    assert "not a diffusers model (no model_index.json)" in one_line_error(lambda: load_sd_engine(str(tmp_path / "folder")))
    assert "is not a model file" in one_line_error(lambda: load_sd_engine(str(tmp_path / "photo.png")))
    assert "no such model file or folder" in one_line_error(lambda: load_sd_engine(str(tmp_path / "gone.safetensors")))
    assert "no such model file or folder" in one_line_error(lambda: load_sd_engine("./not/here"))


def test_a_cached_hub_id_loads_offline(tiny_model_dir, tmp_path, monkeypatch, engine, canvas):
    import shutil

    # The Hugging Face cache layout: models--<org>--<name>/refs/main -> snapshots/<commit>/
    repo = tmp_path / "models--inpaint-kit-test--tiny"
    commit = "0" * 40
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    eng = load_sd_engine("inpaint-kit-test/tiny", cache_dir=str(tmp_path))
    image, mask = canvas
    assert np.array_equal(eng.inpaint(image, mask, [2], FAST, progress=False)[0],
                          engine.inpaint(image, mask, [2], FAST, progress=False)[0])


def test_unknown_hub_id_offline_fails_fast_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.time()
    msg = one_line_error(lambda: load_sd_engine("inpaint-kit-test/no-such-model", cache_dir=str(tmp_path)))
    assert "is not in the Hugging Face cache" in msg and "HF_HUB_OFFLINE" in msg and "--model PATH" in msg
    assert time.time() - t < 30


def test_unknown_hub_id_online_fails_with_one_line(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "5")
    t = time.time()
    msg = one_line_error(lambda: load_sd_engine("inpaint-kit-test/no-such-model", cache_dir=str(tmp_path)))
    assert "is not in the Hugging Face cache" in msg and "--model PATH" in msg
    assert "not reachable" in msg or "no such (public) model" in msg
    assert time.time() - t < 60


def test_pickled_code_in_a_ckpt_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": {"x": Evil()}}, tmp_path / "evil.ckpt")
    msg = one_line_error(lambda: load_sd_engine(str(tmp_path / "evil.ckpt")))
    assert msg.startswith(f"cannot load checkpoint {tmp_path / 'evil.ckpt'}")
    assert not marker.exists()


def test_a_non_inpainting_unet_is_refused():
    from diffusers import UNet2DConditionModel

    from inpaint_kit.presets import build_pipeline, component_configs

    pipe = build_pipeline("tiny")
    pipe.unet = UNet2DConditionModel(in_channels=4, out_channels=4, **component_configs("tiny")["unet"])
    msg = one_line_error(lambda: SDEngine(pipe, "plain-sd", "cpu", "fp32"))
    assert "is not an inpainting model" in msg and "4" in msg


# ---- LoRA and partial fine-tunes --------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir, tmp_path_factory):
    """A diffusers-format UNet LoRA for the tiny model, with random (non-zero) up and down weights."""
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir, subfolder="unet")
    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    out = tmp_path_factory.mktemp("lora")
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionInpaintPipeline.save_lora_weights(out, unet_lora_layers=layers, weight_name="lora_unet.safetensors")
    return out


def test_lora_scale_zero_is_the_base_model_exactly(tiny_model_dir, lora_dir, engine, canvas):
    image, mask = canvas
    base = engine.inpaint(image, mask, [7], FAST, progress=False)[0]
    zero = load_sd_engine(str(tiny_model_dir), lora=str(lora_dir), lora_scale=0.0)
    assert np.array_equal(zero.inpaint(image, mask, [7], FAST, progress=False)[0], base)
    one = load_sd_engine(str(tiny_model_dir), lora=str(lora_dir / "lora_unet.safetensors"), lora_scale=1.0)
    assert max_diff(one.inpaint(image, mask, [7], FAST, progress=False)[0], base) > 0
    assert one.describe()["lora"].endswith("lora_unet.safetensors") and one.describe()["lora_scale"] == 1.0


def test_partial_fine_tune_interpolates_between_base_and_tuned(tiny_model_dir, engine, canvas, tmp_path):
    from safetensors.torch import save_file

    image, mask = canvas
    key = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    base_w = engine.pipe.unet.state_dict()[key].clone()
    tuned = base_w + torch.randn(base_w.shape, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "unet_partial_tuned.safetensors"
    save_file({key: tuned.contiguous()}, str(path), metadata={"inpaint_kit": "inpaint-kit-unet-partial"})

    base = engine.inpaint(image, mask, [7], FAST, progress=False)[0]
    zero = load_sd_engine(str(tiny_model_dir), lora=str(tmp_path), lora_scale=0.0)
    assert np.array_equal(zero.inpaint(image, mask, [7], FAST, progress=False)[0], base)
    half = load_sd_engine(str(tiny_model_dir), lora=str(path), lora_scale=0.5)
    assert torch.allclose(half.pipe.unet.state_dict()[key], (base_w + tuned) / 2, atol=1e-6)
    assert max_diff(half.inpaint(image, mask, [7], FAST, progress=False)[0], base) > 0
    one = load_sd_engine(str(tiny_model_dir), lora=str(path), lora_scale=1.0)
    assert torch.equal(one.pipe.unet.state_dict()[key], tuned)


def test_weights_for_another_model_fail_with_one_line_naming_the_file(tiny_model_dir, tmp_path):
    from safetensors.torch import save_file

    partial = tmp_path / "p" / "unet_partial_tuned.safetensors"
    partial.parent.mkdir()
    key = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    save_file({key: torch.zeros(3, 3)}, str(partial))
    msg = one_line_error(lambda: load_sd_engine(str(tiny_model_dir), lora=str(partial.parent)))
    assert msg.startswith(str(partial)) and "has shape (3, 3)" in msg

    save_file({"no_such_block.weight": torch.zeros(3)}, str(tmp_path / "unknown.safetensors"))
    msg = one_line_error(lambda: load_sd_engine(str(tiny_model_dir), lora=str(tmp_path / "unknown.safetensors")))
    assert msg.startswith(str(tmp_path / "unknown.safetensors")) and "does not exist" in msg

    lora = tmp_path / "lora_unet.safetensors"
    save_file({f"unet.{key[:-len('.weight')]}.lora_A.weight": torch.zeros(4, 99),
               f"unet.{key[:-len('.weight')]}.lora_B.weight": torch.zeros(64, 4)}, str(lora))
    msg = one_line_error(lambda: load_sd_engine(str(tiny_model_dir), lora=str(lora)))
    assert msg.startswith(str(lora))

    (tmp_path / "empty").mkdir()
    assert "holds no lora_unet.safetensors" in one_line_error(
        lambda: load_sd_engine(str(tiny_model_dir), lora=str(tmp_path / "empty")))


# ---- single-file checkpoints (A1111 layout) ---------------------------------------------------------


@pytest.fixture(scope="module")
def single_files(tiny_model_dir, tmp_path_factory):
    """The tiny model (seed 0) as model.safetensors with its config folder model/, and as old.ckpt with a
    config/ folder. Both config folders hold a seed-1 model, so loading its weights instead would show."""
    from safetensors.torch import save_file

    from inpaint_kit.presets import build_pipeline, write_tiny_model

    from inpaint_kit.ldm_layout import ldm_state_dict

    root = tmp_path_factory.mktemp("single")
    state = ldm_state_dict(build_pipeline("tiny", seed=0))
    save_file(state, str(root / "model.safetensors"))
    write_tiny_model(root / "model", "tiny", seed=1)
    (root / "old").mkdir()
    torch.save({"state_dict": state}, root / "old" / "old.ckpt")
    write_tiny_model(root / "old" / "config", "tiny", seed=1)
    return root


@pytest.mark.parametrize("name", ["model.safetensors", "old/old.ckpt"])
def test_single_file_checkpoint_loads_its_own_weights(single_files, engine, canvas, name):
    image, mask = canvas
    eng = load_sd_engine(str(single_files / name))
    expected = engine.inpaint(image, mask, [4], FAST, progress=False)[0]  # the seed-0 folder model
    assert max_diff(eng.inpaint(image, mask, [4], FAST, progress=False)[0], expected) <= 1


def test_single_file_without_config_folder_says_where_to_put_one(single_files, tmp_path):
    import shutil

    lonely = tmp_path / "lonely.safetensors"
    shutil.copy(single_files / "model.safetensors", lonely)
    msg = one_line_error(lambda: load_sd_engine(str(lonely), cache_dir=str(tmp_path / "cache")))
    assert msg.startswith(f"cannot load checkpoint {lonely} (no config folder found")
    assert str(tmp_path / "lonely") in msg and str(tmp_path / "config") in msg
