"""merge-inpaint (add difference) on tiny models: A = the tiny inpainting pipeline (seed 0, 9 channels),
B = a tiny text-to-image base (seed 1, 4 channels), C = B with every weight perturbed (a "fine-tune"
whose UNet, VAE and text encoder all differ from B's)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import one_line_cli

from inpaint_kit.cli import main
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.merge import MergeConfig, merge_inpaint

ALPHA = 0.7
UNET = "unet/diffusion_pytorch_model.safetensors"


def unet(folder) -> dict:
    return load_file(str(Path(folder) / UNET))


def part(folder, name) -> dict:
    sub = Path(folder) / name
    return load_file(str(next(sub.glob("*.safetensors"))))


def perturbed_pipeline(seed: int = 1, scale: float = 0.02):
    """The tiny base pipeline (``seed``) with noise added to every weight: a stand-in fine-tune."""
    from inpaint_kit.presets import build_pipeline

    pipe = build_pipeline("tiny", seed=seed, base=True)
    pipe.tokenizer.model_max_length = 76  # a tokenizer setting of its own, to see where the tokenizer came from
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            for p in module.parameters():
                p.add_(torch.randn(p.shape, generator=g) * scale)
    return pipe


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    """A, B, C as diffusers folders, and the merge of the three (alpha 0.7, folder + single file)."""
    from inpaint_kit.presets import write_tiny_model

    root = tmp_path_factory.mktemp("merge")
    write_tiny_model(root / "base", "tiny", seed=1, base=True)
    perturbed_pipeline().save_pretrained(root / "custom", safe_serialization=True)
    out = root / "out"
    code = main(["merge-inpaint", "--inpaint", str(tiny_model_dir), "--base", str(root / "base"),
                 "--custom", str(root / "custom"), "--alpha", str(ALPHA), "--output_dir", str(out / "merged"),
                 "--single_file", str(out / "merged.safetensors"), "--no_progress"])
    assert code == 0
    return {"A": Path(tiny_model_dir), "B": root / "base", "C": root / "custom", "root": root,
            "merged": out / "merged", "single": out / "merged.safetensors"}


def expected_unet(a: dict, b: dict, c: dict, alpha: float) -> dict:
    """The add-difference recipe computed here in fp32, key by key."""
    out = {}
    for key, ta in a.items():
        tb, tc = b[key].float(), c[key].float()
        if key == "conv_in.weight":
            m = ta.float().clone()
            m[:, :4] = ta[:, :4].float() + alpha * (tc - tb)
            out[key] = m
        else:
            out[key] = ta.float() + alpha * (tc - tb)
    return out


# ---- the weights ------------------------------------------------------------------------------------


def test_every_merged_unet_weight_is_a_plus_alpha_times_c_minus_b_exactly(models):
    a, b, c, m = unet(models["A"]), unet(models["B"]), unet(models["C"]), unet(models["merged"])
    assert set(m) == set(a)
    expected = expected_unet(a, b, c, ALPHA)
    for key in a:
        assert m[key].dtype == torch.float32
        assert torch.equal(m[key], expected[key]), key
    # the fine-tune's difference really is in there (C differs from B everywhere)
    assert not torch.equal(m["mid_block.attentions.0.proj_in.weight"], a["mid_block.attentions.0.proj_in.weight"])


def test_extra_input_channels_are_the_inpainting_models(models):
    a, b, c, m = unet(models["A"]), unet(models["B"]), unet(models["C"]), unet(models["merged"])
    assert a["conv_in.weight"].shape[1] == 9 and c["conv_in.weight"].shape[1] == 4
    assert torch.equal(m["conv_in.weight"][:, 4:], a["conv_in.weight"][:, 4:])  # mask + masked-image latents
    first = a["conv_in.weight"][:, :4] + ALPHA * (c["conv_in.weight"] - b["conv_in.weight"])
    assert torch.equal(m["conv_in.weight"][:, :4], first)


def test_text_encoder_tokenizer_and_vae_come_from_the_fine_tune_scheduler_from_the_inpainting_model(models):
    m, a, c = models["merged"], models["A"], models["C"]
    for name in ("text_encoder", "vae"):
        got, want = part(m, name), part(c, name)
        assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want), name
        assert any(not torch.equal(got[k], part(a, name)[k]) for k in got if k in part(a, name))
    assert json.loads((m / "tokenizer" / "tokenizer_config.json").read_text())["model_max_length"] == 76
    sched = json.loads((m / "scheduler" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == json.loads((a / "scheduler" / "scheduler_config.json").read_text())["_class_name"]
    recipe = json.loads((m / "merge_config.json").read_text())
    assert recipe["parts"] == {"unet": "add_difference", "unet_extra_input_channels": "inpaint", "text_encoder": "custom",
                               "tokenizer": "custom", "vae": "custom", "scheduler": "inpaint"}


def test_alpha_zero_gives_the_inpainting_unet_and_parts_can_come_from_it(models, tmp_path):
    cfg = MergeConfig(inpaint=str(models["A"]), base=str(models["B"]), custom=str(models["C"]),
                      output_dir=str(tmp_path / "zero"), alpha=0.0, text_encoder_from="inpaint", vae_from="inpaint")
    merge_inpaint(cfg, progress=False)
    a, m = unet(models["A"]), unet(tmp_path / "zero")
    assert set(a) == set(m) and all(torch.equal(a[k], m[k]) for k in a)
    for name in ("text_encoder", "vae"):
        got, want = part(tmp_path / "zero", name), part(models["A"], name)
        assert all(torch.equal(got[k], want[k]) for k in want), name
    assert json.loads((tmp_path / "zero" / "tokenizer" / "tokenizer_config.json").read_text())["model_max_length"] == 77


def test_recipe_names_the_models_with_their_sha256(models):
    from inpaint_kit.model_source import folder_sha256

    recipe = json.loads((models["merged"] / "merge_config.json").read_text())
    assert recipe["method"] == "add_difference" and recipe["alpha"] == ALPHA and recipe["dtype"] == "fp32"
    for name, key in (("inpaint", "A"), ("base", "B"), ("custom", "C")):
        assert recipe["models"][name]["model"] == str(models[key])
        assert recipe["models"][name]["sha256"] == folder_sha256(models[key])


def test_folder_sha256_is_what_the_documented_shell_pipeline_prints(models):
    from inpaint_kit.model_source import folder_sha256

    if shutil.which("sha256sum") is None:
        pytest.skip("no sha256sum")
    shell = ("(cd \"$0\" && find . -type f -not -path '*/.*' -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum) "
             "| sha256sum")
    out = subprocess.run(["bash", "-c", shell, str(models["B"])], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == folder_sha256(models["B"])


def test_mixed_dtypes_merge_in_fp32_and_save_in_the_chosen_dtype(models, tmp_path):
    pipe = perturbed_pipeline()
    pipe.to(torch.float16).save_pretrained(tmp_path / "custom16", safe_serialization=True)
    cfg = MergeConfig(inpaint=str(models["A"]), base=str(models["B"]), custom=str(tmp_path / "custom16"),
                      output_dir=str(tmp_path / "m16"), alpha=ALPHA, dtype="fp16")
    recipe = merge_inpaint(cfg, progress=False)
    a, b, c16, m = unet(models["A"]), unet(models["B"]), unet(tmp_path / "custom16"), unet(tmp_path / "m16")
    assert c16["conv_out.weight"].dtype == torch.float16
    expected = expected_unet(a, b, c16, ALPHA)  # c16 upcast to fp32 before the difference
    for key in a:
        assert m[key].dtype == torch.float16
        assert torch.equal(m[key], expected[key].half()), key
    assert recipe["input_dtypes"] == {"inpaint": ["fp32"], "base": ["fp32"], "custom": ["fp16"]}
    assert part(tmp_path / "m16", "vae")["decoder.conv_out.weight"].dtype == torch.float16


def test_single_file_and_ckpt_inputs_merge_to_the_same_weights(models, tmp_path):
    """C as an original-layout .safetensors (streamed through diffusers' key map) and B as a .ckpt pickle
    (loaded whole, weights_only) give the same merge as the folders."""
    from inpaint_kit.ldm_layout import ldm_state_dict
    from inpaint_kit.presets import build_pipeline

    save_file(ldm_state_dict(perturbed_pipeline()), str(tmp_path / "custom.safetensors"))
    shutil.copytree(models["C"], tmp_path / "custom")  # its config folder (<dir>/<stem>/), as infer needs
    (tmp_path / "old").mkdir()
    torch.save({"state_dict": ldm_state_dict(build_pipeline("tiny", seed=1, base=True))}, tmp_path / "old" / "base.ckpt")
    shutil.copytree(models["B"], tmp_path / "old" / "config")
    cfg = MergeConfig(inpaint=str(models["A"]), base=str(tmp_path / "old" / "base.ckpt"),
                      custom=str(tmp_path / "custom.safetensors"), output_dir=str(tmp_path / "m"), alpha=ALPHA)
    recipe = merge_inpaint(cfg, progress=False)
    want, got = unet(models["merged"]), unet(tmp_path / "m")
    assert set(want) == set(got) and all(torch.equal(want[k], got[k]) for k in want)
    te_want, te_got = part(models["merged"], "text_encoder"), part(tmp_path / "m", "text_encoder")
    assert all(torch.equal(te_want[k], te_got[k]) for k in te_want)
    assert recipe["models"]["custom"]["kind"] == "file"
    assert len(recipe["models"]["custom"]["sha256"]) == 64


# ---- loading the result -----------------------------------------------------------------------------


def test_merged_folder_loads_in_plain_diffusers(models):
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline.from_pretrained(models["merged"], local_files_only=True)
    assert pipe.unet.config.in_channels == 9
    merged = unet(models["merged"])
    assert all(torch.equal(v, merged[k]) for k, v in pipe.unet.state_dict().items())


def test_single_file_round_trip_gives_the_same_weights(models):
    from diffusers import StableDiffusionInpaintPipeline

    from inpaint_kit.recipe import read_recipe

    pipe = StableDiffusionInpaintPipeline.from_single_file(
        str(models["single"]), config=str(models["merged"]), local_files_only=True, safety_checker=None,
        requires_safety_checker=False)
    folder = StableDiffusionInpaintPipeline.from_pretrained(models["merged"], local_files_only=True)
    for name in ("unet", "vae", "text_encoder"):
        want, got = getattr(folder, name).state_dict(), getattr(pipe, name).state_dict()
        assert set(want) == set(got), name
        for key in want:
            assert torch.equal(want[key], got[key]), (name, key)
    assert read_recipe(models["single"]) == read_recipe(models["merged"])


def infer(model, out: Path, *extra) -> np.ndarray:
    from PIL import Image

    repo = Path(__file__).resolve().parents[1]
    code = main(["infer", "--model", str(model), "--image", str(repo / "imgs" / "coffee.png"), "--mask",
                 str(repo / "masks" / "coffee.png"), "--steps", "2", "--size", "64", "--rows", "1", "--seed", "3",
                 "--output", str(out), "--overwrite", "--no_progress", "--save_rows", *extra])
    assert code == 0
    return np.asarray(Image.open(next(out.parent.glob(f"{out.stem.removesuffix('_collage')}_row0_*.png"))))


def test_infer_loads_the_merge_records_its_recipe_and_fills_differently_from_a(models, tmp_path):
    from PIL import Image

    from inpaint_kit.images import read_metadata

    repo = Path(__file__).resolve().parents[1]
    mask = np.asarray(Image.open(repo / "masks" / "coffee.png").convert("L")) < 128  # black = repaint (default)
    merged = infer(models["merged"], tmp_path / "m" / "coffee_collage.png")
    single = infer(models["single"], tmp_path / "s" / "coffee_collage.png")
    plain = infer(models["A"], tmp_path / "a" / "coffee_collage.png")
    assert np.array_equal(merged, single)  # the single file is the same model
    diff = np.abs(merged.astype(int) - plain.astype(int)).max(axis=2)
    assert diff[mask].max() > 20  # the fine-tune's difference shows in the fill
    assert diff[~mask].max() == 0  # outside the mask: the input's pixels
    meta = read_metadata(tmp_path / "m" / "coffee_collage.png")
    assert meta["recipe"]["method"] == "add_difference" and meta["recipe"]["alpha"] == ALPHA
    assert meta["recipe"]["models"]["custom"]["model"] == str(models["C"])
    assert read_metadata(tmp_path / "s" / "coffee_collage.png")["recipe"] == meta["recipe"]
    assert "recipe" not in read_metadata(tmp_path / "a" / "coffee_collage.png")


# ---- checks: one line, exit 2, before any work -------------------------------------------------------


def merge_args(models, out, **over):
    args = {"--inpaint": models["A"], "--base": models["B"], "--custom": models["C"], "--output_dir": out}
    args.update(over)
    return ["merge-inpaint", *[str(x) for kv in args.items() for x in kv], "--no_progress"]


def test_four_channel_inpaint_model_is_a_one_line_error(models, tmp_path, capsys):
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--inpaint": models["B"]}), capsys)
    assert f"--inpaint {models['B']} is not an inpainting model" in err and "4 input channels" in err
    assert not (tmp_path / "o").exists()


def test_inpainting_model_as_base_or_custom_is_a_one_line_error(models, tmp_path, capsys):
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--base": models["A"]}), capsys)
    assert f"--base {models['A']} is an inpainting model" in err
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--custom": models["A"]}), capsys)
    assert f"--custom {models['A']} is an inpainting model" in err


def variant(models, tmp_path, name, **unet_changes) -> Path:
    """A copy of B whose UNet is rebuilt with ``unet_changes`` to its config (another architecture)."""
    from diffusers import UNet2DConditionModel

    folder = tmp_path / name
    shutil.copytree(models["B"], folder)
    config = UNet2DConditionModel.load_config(folder / "unet")
    config.update(unet_changes)
    shutil.rmtree(folder / "unet")
    UNet2DConditionModel.from_config(config).save_pretrained(folder / "unet")
    return folder


def test_models_of_different_families_are_a_one_line_error(models, tmp_path, capsys):
    sd2ish = variant(models, tmp_path, "wide", cross_attention_dim=64)
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--custom": sd2ish}), capsys)
    assert f"--custom {sd2ish} is cross-attention width 64 but --inpaint {models['A']} is cross-attention width 32" in err
    widths = variant(models, tmp_path, "blocks", block_out_channels=[32, 32])
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--base": widths}), capsys)
    assert f"--base {widths} has UNet block widths [32, 32] but --inpaint {models['A']} has [32, 64]" in err


def test_sd_families_are_named():
    from inpaint_kit.merge import family

    assert family({"cross_attention_dim": 768}) == "SD 1.x" and family({"cross_attention_dim": 1024}) == "SD 2.x"


def test_missing_weights_are_listed_or_counted(models, tmp_path, capsys):
    folder = tmp_path / "partial"
    shutil.copytree(models["C"], folder)
    weights = unet(folder)
    few = ["conv_out.bias", "time_embedding.linear_1.weight"]
    save_file({k: v for k, v in weights.items() if k not in few}, str(folder / UNET))
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--custom": folder}), capsys)
    assert f"--custom {folder} lacks 2 UNet weight(s) of --inpaint {models['A']}: conv_out.bias, time_embedding.linear_1.weight" in err
    many = [k for k in weights if k.startswith("down_blocks.1.")]
    save_file({k: v for k, v in weights.items() if k not in many}, str(folder / UNET))
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--custom": folder}), capsys)
    assert f"lacks {len(many)} UNet weight(s)" in err and f"(and {len(many) - 5} more)" in err


def test_output_checks_come_first(models, tmp_path, capsys):
    (tmp_path / "exists").mkdir()
    err = one_line_cli(merge_args(models, tmp_path / "exists"), capsys)
    assert "--output_dir" in err and "already exists; pass --overwrite" in err
    err = one_line_cli(merge_args(models, models["C"]) + ["--overwrite"], capsys)
    assert "is the --custom model" in err
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--single_file": tmp_path / "m.ckpt"}), capsys)
    assert "--single_file" in err and ".safetensors" in err
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--alpha": "nan"}), capsys)
    assert "--alpha must be a finite number" in err
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--custom": tmp_path / "nothing"}), capsys)
    assert err.startswith("error: --custom:") and str(tmp_path / "nothing") in err
    assert not (tmp_path / "o").exists()


def test_library_checks_raise_before_reading_weights(models, tmp_path):
    cfg = MergeConfig(inpaint=str(models["B"]), base=str(models["B"]), custom=str(models["C"]),
                      output_dir=str(tmp_path / "o"))
    with pytest.raises(InpaintKitError, match="is not an inpainting model"):
        merge_inpaint(cfg, progress=False)


def test_hub_ids_are_read_from_the_cache_and_an_uncached_one_offline_is_one_line(models, tmp_path, monkeypatch, capsys):
    """A hub id in the Hugging Face cache streams from its snapshot folder (revision recorded); one that is
    not cached, with HF_HUB_OFFLINE set, is a one-line error naming the flag."""
    from inpaint_kit.model_source import folder_sha256

    cache = tmp_path / "hf"
    repo = cache / "models--someone--sd-base"
    shutil.copytree(models["B"], repo / "snapshots" / "0123abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = MergeConfig(inpaint=str(models["A"]), base="someone/sd-base", custom=str(models["C"]),
                      output_dir=str(tmp_path / "m"), alpha=ALPHA, cache_dir=str(cache))
    recipe = merge_inpaint(cfg, progress=False)
    want, got = unet(models["merged"]), unet(tmp_path / "m")
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert recipe["models"]["base"] == {"model": "someone/sd-base", "kind": "hub", "revision": "0123abc",
                                        "sha256": folder_sha256(models["B"]), "sha256_of": "folder listing"}
    err = one_line_cli(merge_args(models, tmp_path / "o", **{"--base": "someone/other", "--cache_dir": cache}), capsys)
    assert "--base: model 'someone/other' is not in the Hugging Face cache" in err and "pass --base PATH" in err
