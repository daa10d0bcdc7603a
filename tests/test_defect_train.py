"""DefectFill training on the tiny preset (CPU, 64x64): each loss term by the real code, attention capture,
prompts, what gets gradients, the saved LoRA, resume."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from inpaint_kit.train.defect import attention, data
from inpaint_kit.train.defect.config import DefectTrainConfig
from inpaint_kit.train.defect.trainer import DefectTrainer, defect_loss, object_loss
from inpaint_kit.train.defect.trainer import train as train_defect


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return data.write_fixture(tmp_path_factory.mktemp("defect_data"), n_defect=3, size=64)


def config(dataset, model, out, **kw):
    base = dict(data=str(dataset), object_class="bottle", defect_type="crack", model=str(model), output_dir=str(out),
                size=64, steps=2, lora_rank=4, lr=1e-2, save_every=100, progress=False, seed=3, attn_res=4)
    return DefectTrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def trainer(dataset, tiny_model_dir, tmp_path_factory):
    return DefectTrainer(config(dataset, tiny_model_dir, tmp_path_factory.mktemp("defect_run")))


def terms(trainer, micro=0, **changes):
    batch = trainer.batch(micro)
    batch.update(changes)
    with torch.no_grad():
        return trainer.loss_terms(batch, trainer.generators(trainer.draws(micro)))


def test_defect_loss_counts_the_mask_only():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:5, 3:6] = 1
    base = defect_loss(pred, target, mask)
    outside = pred.clone()
    outside[:, :, 6:, :] += 5.0  # error outside the mask: ignored
    assert torch.allclose(defect_loss(outside, target, mask), base)
    inside = pred.clone()
    inside[:, :, 3, 4] += 5.0  # error inside: counted
    assert (defect_loss(inside, target, mask) > base).all()
    expected = ((pred - target) ** 2)[:, :, 2:5, 3:6].mean(dim=(1, 2, 3))
    assert torch.allclose(base, expected)
    # the object loss is the whole image's
    assert torch.allclose(object_loss(pred, target), ((pred - target) ** 2).mean(dim=(1, 2, 3)))
    assert not torch.allclose(object_loss(outside, target), object_loss(pred, target))


def test_every_term_is_finite_and_depends_on_its_inputs(trainer):
    t = terms(trainer)
    assert set(t) == {"def", "obj", "attn"}
    assert all(torch.isfinite(v).all() and (v > 0).all() and v.shape == (1,) for v in t.values())
    assert torch.equal(terms(trainer)["def"], t["def"])  # a draw is deterministic
    batch = trainer.batch(0)
    moved = torch.roll(batch["mask"], shifts=16, dims=-1)  # the defect elsewhere
    t2 = terms(trainer, mask=moved)
    assert not torch.allclose(t2["def"], t["def"]) and not torch.allclose(t2["attn"], t["attn"])
    bigger = torch.maximum(batch["adjusted"], torch.roll(batch["adjusted"], 20, -2))
    t3 = terms(trainer, adjusted=bigger)  # the object rows' mask changes the object loss, not the defect rows
    assert not torch.allclose(t3["obj"], t["obj"]) and torch.allclose(t3["def"], t["def"])


def test_prompts_follow_the_templates_and_the_token_position(trainer):
    tok = trainer.tokenizer
    texts = [tok.decode(ids, skip_special_tokens=True).strip() for ids in trainer.prompt_ids.tolist()]
    assert texts == ["a photo of sks", "a bottle with sks"]
    ids = trainer.prompt_ids[1].tolist()
    assert [ids[p] for p in trainer.positions] == tok("sks", add_special_tokens=False).input_ids
    assert trainer.positions[0] > 1  # after BOS and "a bottle with"


def test_attention_maps_shape_and_sum(trainer):
    """Over all 77 tokens the probabilities sum to 1 at every cell, so the map over every position is all ones;
    the token's own map lies in [0, 1] and differs from another token's."""
    unet, store = trainer.unet, trainer.store
    x = torch.randn(1, 9, 8, 8, generator=torch.Generator().manual_seed(0))
    emb = trainer.text_encoder(trainer.prompt_ids[1:])[0]
    t = torch.tensor([500])
    with torch.no_grad():
        plain = unet(x, t, emb).sample
        store.reset((8, 8))
        store.enabled = True
        try:
            captured = unet(x, t, emb).sample
            token_maps = [m.clone() for m in store.maps]
            token_map = store.token_map(4)
            store.positions = list(range(77))
            store.reset((8, 8))
            unet(x, t, emb)
            everything = store.token_map(4)
            store.positions = [1]
            store.reset((8, 8))
            unet(x, t, emb)
            other = store.token_map(4)
            store.positions, store.rows = trainer.positions, slice(1, 2)  # only the second row of a batch of 2
            store.reset((8, 8))
            unet(torch.cat([torch.randn_like(x), x]), torch.cat([t, t]), torch.cat([emb, emb]))
            second_row = store.token_map(4)
        finally:
            store.enabled, store.positions, store.rows = False, trainer.positions, None
    assert torch.allclose(captured, plain, atol=1e-5)  # capturing does not change the forward pass
    assert len(token_maps) == trainer.captured_layers == 6  # tiny: 2 down + 3 up transformer blocks + mid
    assert all(m.shape == (1, 4, 4) for m in token_maps)  # the tiny UNet attends at latent/2 only
    assert token_map.shape == everything.shape == (1, 4, 4)
    assert torch.allclose(everything, torch.ones(1, 4, 4), atol=1e-5)
    assert (token_map >= 0).all() and (token_map <= 1).all() and not torch.allclose(token_map, other)
    assert second_row.shape == (1, 4, 4) and torch.allclose(second_row, token_map, atol=1e-5)


def test_attention_loss_is_zero_when_the_map_is_the_mask():
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 8:40, 16:24] = 1
    small = attention.mask_at(mask, 4)
    assert small.shape == (2, 4, 4) and small[0, 1, 1] == 0.5 and small[0, 0, 1] == 0.25 and small[1].sum() == 0
    assert torch.equal(attention.attention_loss(small, small), torch.zeros(2))
    assert (attention.attention_loss(small + 0.1, small) > 0).all()
    store = attention.AttentionStore([0])
    store.reset((8, 8))
    store.maps = [torch.ones(2, 4, 4), torch.zeros(2, 2, 2)]  # area down / bilinear up, then the layer mean
    assert torch.allclose(store.token_map(4), torch.full((2, 4, 4), 0.5))


def test_gradients_reach_only_lora_parameters_of_unet_and_text_encoder(trainer):
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.micro_loss(0).backward()
    got = {(i, n) for i, m in enumerate([trainer.unet, trainer.text_encoder, trainer.vae])
           for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert got and all("lora_" in n and i in (0, 1) for i, n in got)
    assert {i for i, _ in got} == {0, 1}
    assert any("attn2" in n for i, n in got if i == 0)
    trainer.optimizer.zero_grad(set_to_none=True)


def test_no_attention_loss_means_no_capture(dataset, tiny_model_dir, tmp_path):
    tr = DefectTrainer(config(dataset, tiny_model_dir, tmp_path / "r", lambda_attn=0.0))
    assert tr.captured_layers == 0
    assert all(type(p).__name__ != "CaptureProcessor" for p in tr.unet.attn_processors.values())
    assert torch.equal(terms(tr)["attn"], torch.zeros(1))


def lora_state(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_train_saves_loadable_lora_and_resume_matches(dataset, tiny_model_dir, tmp_path):
    from inpaint_kit.engine import Canvas, Sampling
    from inpaint_kit.engine.sd import load_sd_engine

    full = train_defect(config(dataset, tiny_model_dir, tmp_path / "full", steps=3))
    assert full.step == 3 and all(np.isfinite(full.losses))
    weights = lora_state(full.weights)
    assert any(k.startswith("unet.") for k in weights) and any(k.startswith("text_encoder.") for k in weights)
    record = json.loads((tmp_path / "full" / "training_config.json").read_text())
    assert record["kind"] == "defectfill" and record["token"] == "sks" and record["object_class"] == "bottle"
    assert record["losses"] == {"lambda_def": 0.5, "lambda_obj": 0.2, "lambda_attn": 0.05}
    assert record["object_prompt"] == "A bottle with sks" and len(record["references"]) == 3
    # interrupted after 1 update, resumed to 3: the same weights as the uninterrupted run
    train_defect(config(dataset, tiny_model_dir, tmp_path / "split", steps=3, stop_after=1))
    resumed = train_defect(DefectTrainConfig.from_run(str(tmp_path / "split")))
    assert resumed.step == 3
    again = lora_state(resumed.weights)
    assert all(torch.allclose(weights[k], again[k], atol=1e-6) for k in weights)
    # the LoRA loads for inference (UNet and text encoder) and changes the result
    engine = load_sd_engine(str(tiny_model_dir), device="cpu", lora=str(tmp_path / "full"))
    assert set(engine.pipe.get_list_adapters()) == {"unet", "text_encoder"}
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    s = Sampling(prompt="A bottle with sks", steps=2, guidance=1.0)
    tuned = engine.fill([Canvas(image, mask, 1)], s, progress=False)[0]
    base = load_sd_engine(str(tiny_model_dir), device="cpu").fill([Canvas(image, mask, 1)], s, progress=False)[0]
    assert not np.array_equal(tuned, base)


def test_attention_loss_alone_pulls_the_token_map_towards_the_mask(dataset, tiny_model_dir, tmp_path):
    """Gradients of the captured map reach the LoRA: training on the attention loss only lowers it on fixed draws."""
    tr = DefectTrainer(config(dataset, tiny_model_dir, tmp_path / "a", steps=20, lr=2e-2, lambda_def=0.0,
                              lambda_obj=0.0, lambda_attn=1.0))
    before = [float(terms(tr, m)["attn"]) for m in range(3)]
    tr.run()
    after = [float(terms(tr, m)["attn"]) for m in range(3)]
    assert all(a < 0.9 * b for a, b in zip(after, before)), (before, after)
