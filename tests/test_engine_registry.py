"""The engine registry: which engine a --model selects, the InferConfig fields and flags it gives every
command, the checks of engine options before any model loads, and what the UI and the metadata read from it."""

from __future__ import annotations

import shutil
from dataclasses import fields

import pytest

from inpaint_kit.cli import build_parser
from inpaint_kit.engine import registry
from inpaint_kit.engine.options import DDPM_SAMPLERS, INITS, SCHEDULERS, DDPMOptions, SDOptions
from inpaint_kit.errors import UsageError
from inpaint_kit.inpaint import InferConfig, same_request
from inpaint_kit.ui.handlers import EngineCache


def test_models_select_their_engine(tiny_model_dir, tmp_path):
    (tmp_path / "notes").mkdir()
    assert registry.find("builtin").name == "ddpm"
    assert registry.find(str(tiny_model_dir)).name == "sd"
    assert registry.find("org/some-inpainting-model").name == "sd"
    with_cn = SDOptions(controlnet="cn")
    assert registry.find(str(tiny_model_dir), lambda s: with_cn if s.options is SDOptions else None).name == "controlnet"
    assert InferConfig(model=str(tiny_model_dir), controlnet="cn").engine_spec().name == "controlnet"
    assert InferConfig(model="builtin").engine_options() == DDPMOptions()
    # a folder no engine recognises goes to the SD engine, whose loader says what is wrong; the UI lists none
    assert registry.find(str(tmp_path / "notes")).name == "sd" and not registry.recognizes(str(tmp_path / "notes"))
    assert registry.recognizes(str(tiny_model_dir)) and registry.recognizes("builtin")


def test_infer_config_has_every_engines_options_as_fields():
    names = {f.name for f in fields(InferConfig)}
    assert {f.name for f in fields(SDOptions)} <= names and "ddpm" in names
    assert set(registry.config_fields()) == {*(f.name for f in fields(SDOptions)), "ddpm"}
    cfg = InferConfig(model="builtin", ddpm=DDPMOptions(sampler="ddim"))
    assert cfg.validate().engine_options().sampler == "ddim"


@pytest.mark.parametrize("command", ["infer", "outpaint"])
def test_every_engine_flag_is_on_every_inference_command(command):
    parser = build_parser(command)
    options = {o for a in parser._actions for o in a.option_strings}
    for group in registry.option_groups():
        for f in registry.flag_fields(group.options):
            assert f"--{f.name}" in options, (command, f.name)
    args = parser.parse_args(["--controlnet", "cn", "--control_scale", "0.5", "--sampler", "ddim"])
    assert (args.controlnet, args.controlnet_scale, args.sampler) == ("cn", 0.5, "ddim")


@pytest.mark.parametrize("kw, message", [
    ({"model": "builtin", "lora": "x"}, "--lora x does not apply to --model builtin (the builtin / DDPM engine); "
                                        "it is for Stable Diffusion models"),
    ({"model": "builtin", "controlnet": "cn"}, "--controlnet cn does not apply to --model builtin"),
    ({"model": "org/model", "ddpm": DDPMOptions(sampler="ddim")},
     "--sampler ddim does not apply to --model org/model (Stable Diffusion models); it is for the builtin / DDPM engine"),
    ({"model": "org/model", "controlnet": "cn", "ddpm": DDPMOptions(init="telea")},
     "--init telea does not apply to --model org/model (Stable Diffusion models with --controlnet)"),
    ({"model": "builtin", "negative_prompt": "blur"}, "--negative_prompt blur does not apply to --model builtin"),
    ({"model": "org/model", "controlnet_scale": 0.5}, "--controlnet_scale applies only with --controlnet"),
])
def test_options_of_another_engine_are_one_line_errors_before_loading(kw, message):
    with pytest.raises(UsageError) as e:
        InferConfig(**kw).validate()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_names_the_flags_accept_match_the_engines():
    from inpaint_kit.classical import CLASSICAL
    from inpaint_kit.ddpm.sampling import SAMPLERS
    from inpaint_kit.engine.sd import _SCHEDULER_SPECS

    assert SCHEDULERS == ("default", *_SCHEDULER_SPECS)
    assert DDPM_SAMPLERS == SAMPLERS and INITS == ("noise", *CLASSICAL)


def test_the_ui_caches_one_engine_per_engine_option():
    """The cache key is the selected engine's options, whatever they are (the ControlNet too)."""
    sd = InferConfig(model="org/model")
    assert EngineCache.key(sd) != EngineCache.key(InferConfig(model="org/model", controlnet="cn"))
    assert EngineCache.key(sd) != EngineCache.key(InferConfig(model="org/model", scheduler="ddim"))
    assert EngineCache.key(sd) == EngineCache.key(InferConfig(model="org/model", lora_scale=0.5))  # no LoRA
    assert EngineCache.key(InferConfig(model="builtin")) != EngineCache.key(
        InferConfig(model="builtin", ddpm=DDPMOptions(sampler="ddim")))


def test_ui_model_list_offers_what_an_engine_recognises(tiny_model_dir, tmp_path):
    from inpaint_kit.ui.handlers import model_choices

    shutil.copytree(tiny_model_dir, tmp_path / "sd")
    (tmp_path / "ddpm").mkdir()
    (tmp_path / "ddpm" / "config.json").write_text('{"_inpaint_kit": "ddpm"}')
    (tmp_path / "empty").mkdir()
    assert model_choices(tmp_path) == ["builtin", str(tmp_path / "ddpm"), str(tmp_path / "sd")]


def test_infotext_sampler_names_come_from_the_engine():
    assert registry.sampler_name({"engine": "sd", "scheduler_class": "DPMSolverMultistepScheduler"}) == "DPM++ 2M"
    assert registry.sampler_name({"engine": "controlnet", "scheduler_class": "DDIMScheduler"}) == "DDIM"
    assert registry.sampler_name({"scheduler": "euler"}) == "euler"  # records without an engine are SD's
    assert registry.sampler_name({"engine": "ddpm", "sampler": "repaint"}) == "RePaint"
    assert registry.sampler_name({"engine": "ddpm"}) == "DDPM"
    assert registry.sampler_name({"engine": "not-installed"}) == "not-installed"


def test_resume_ignores_options_that_were_not_given():
    """An output recorded before an engine (with its empty options group) was installed is still done."""
    wanted = {"model": "m", "ddpm": {}, "toy": {}, "lora": None, "steps": 2}
    assert same_request({"model": "m", "ddpm": {}, "lora": None, "steps": 2}, wanted)
    assert not same_request({"model": "m", "ddpm": {"sampler": "ddim"}, "steps": 2}, wanted)
    assert not same_request({"model": "m", "steps": 3}, wanted) and not same_request(None, wanted)


def test_sd_outputs_name_their_engine(tiny_model_dir):
    import numpy as np

    from inpaint_kit.api import restore

    image = np.full((32, 32, 3), 100, np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    result = restore(image, mask, model=str(tiny_model_dir), size=64, steps=2, rows=1, seed=1)
    assert result.metadata["engine"] == "sd" and result.metadata["prompt"] == ""
    assert "controlnet" not in result.metadata  # SD records no ControlNet fields it never used
