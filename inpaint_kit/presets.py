"""Stable Diffusion inpainting architectures with random weights, for offline tests and benchmarks.

A preset is the set of component configs of a ``StableDiffusionInpaintPipeline``: a 9-channel UNet
(4 noisy latents + 1 mask + 4 masked-image latents), a KL VAE with 4 latent channels, a CLIP text
encoder, an offline CLIP tokenizer and a scheduler. ``build_pipeline`` instantiates one with seeded
random weights; ``write_tiny_model`` saves it with ``save_pretrained`` so that ``--model DIR`` loads it
through the ordinary path. The images such a pipeline makes are noise; what is real is the code path,
the shapes and (for ``sd15``/``sd2``) the compute cost.

    tiny   diffusers' test-size components (VAE downsamples by 8 like the real ones); a 2-step
           64x64 call takes a fraction of a second on a CPU.
    small  a mid-size model for benchmarks (94 M-param UNet): ~0.3-0.6 s per UNet call at 256x256,
           batch 1, on one CPU core.
    sd15   the SD1.5-inpainting architecture (860 M-param UNet, CLIP ViT-L/14 text encoder).
    sd2    the SD2-inpainting architecture (866 M-param UNet with linear-projection attention and
           head dims (5, 10, 20, 20), cross-attention dim 1024, OpenCLIP-H text encoder).

The tokenizer is byte-level BPE with a hand-written vocabulary (every byte, its end-of-word form, a
few merges, the two special tokens), generated in code: any text tokenizes, just not the way the real
49408-token vocabulary would. The sd15/sd2 text encoders keep the real 49408-row embedding table so
that their parameter counts match.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .errors import InpaintKitError

PRESETS = ("tiny", "small", "sd15", "sd2")
CLIP_VOCAB_SIZE = 49408  # the real CLIP tokenizer's vocabulary (sd15/sd2 embedding tables)
MODEL_MAX_LENGTH = 77

# The noise schedule every SD1.x/2.x checkpoint was trained with; epsilon prediction throughout.
_SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)

_SD_VAE = dict(
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    sample_size=512,
)

# Component configs per preset. ``unet``/``vae`` are keyword arguments of the diffusers classes;
# ``text`` of ``transformers.CLIPTextConfig`` (token ids are filled in from the tokenizer);
# ``scheduler`` names the class that the corresponding real model ships.
_CONFIGS = {
    "tiny": dict(
        unet=dict(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=8,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
        ),
        # Four levels so that the VAE downsamples by 8 like the real one (latents h/8 x w/8).
        vae=dict(block_out_channels=(32, 32, 32, 32), layers_per_block=1, sample_size=64),
        text=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  projection_dim=32, vocab_size=None),
        scheduler="PNDMScheduler",
    ),
    "small": dict(
        # 94 M-param UNet: ~0.3-0.6 s per UNet call at 256x256, batch 1, on one busy CPU core.
        unet=dict(
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=1,
            sample_size=32,
            cross_attention_dim=512,
            attention_head_dim=8,
        ),
        vae=dict(block_out_channels=(32, 64, 128, 128), layers_per_block=1, sample_size=256),
        text=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=4, num_attention_heads=8,
                  projection_dim=512, vocab_size=None),
        scheduler="PNDMScheduler",
    ),
    "sd15": dict(
        unet=dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8),
        vae=_SD_VAE,
        text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  projection_dim=768, hidden_act="quick_gelu", vocab_size=CLIP_VOCAB_SIZE),
        # runwayml/stable-diffusion-inpainting ships a DDIM config (from memory: not checkable offline).
        scheduler="DDIMScheduler",
    ),
    "sd2": dict(
        unet=dict(
            sample_size=64,
            cross_attention_dim=1024,
            attention_head_dim=(5, 10, 20, 20),
            use_linear_projection=True,
        ),
        vae=_SD_VAE,
        # OpenCLIP ViT-H/14 text tower as diffusers ships it (23 of its 24 layers: SD2 uses the penultimate).
        text=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                  projection_dim=512, hidden_act="gelu", vocab_size=CLIP_VOCAB_SIZE),
        scheduler="PNDMScheduler",
    ),
}

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# A handful of merges so the BPE path is exercised; words not covered fall back to single bytes.
_MERGES = ("t h", "th e</w>", "a n", "an d</w>", "i n", "in g</w>", "e r</w>", "o n</w>", "a t</w>", "r e")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars)))


def tokenizer_vocab() -> tuple[dict[str, int], list[str]]:
    """The hand-written byte-level vocabulary and merges (same layout as CLIP's: bytes, bytes+</w>,
    merges, then the two special tokens)."""
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in _MERGES] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    return vocab, list(_MERGES)


def build_tokenizer():
    """An offline ``CLIPTokenizer`` (model_max_length 77) built from the generated vocabulary; its
    ``save_pretrained`` writes the usual ``vocab.json`` / ``merges.txt`` / ``tokenizer.json``."""
    from transformers import CLIPTokenizer

    vocab, merges = tokenizer_vocab()
    return CLIPTokenizer(
        vocab=vocab,
        merges=[tuple(m.split()) for m in merges],
        model_max_length=MODEL_MAX_LENGTH,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
    )


def _check_preset(preset: str) -> dict:
    if preset not in _CONFIGS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return _CONFIGS[preset]


def component_configs(preset: str) -> dict:
    """A copy of ``preset``'s component configs: ``unet`` and ``vae`` (diffusers keyword arguments,
    without the channel counts), ``text`` (``CLIPTextConfig`` keywords) and ``scheduler`` (class name)."""
    import copy

    return copy.deepcopy(_check_preset(preset))


def build_scheduler(preset: str):
    """The scheduler the corresponding real model ships (PNDM for SD2-inpainting, DDIM for SD1.5-inpainting)."""
    import diffusers

    cls = getattr(diffusers, _check_preset(preset)["scheduler"])
    kwargs = dict(_SCHEDULE)
    if cls is diffusers.PNDMScheduler:
        kwargs.pop("clip_sample")
        kwargs["skip_prk_steps"] = True
    return cls(**kwargs)


def build_pipeline(preset: str = "tiny", seed: int = 0, base: bool = False):
    """A ``StableDiffusionInpaintPipeline`` of the ``preset`` architecture with random weights drawn
    from ``torch.manual_seed(seed)`` (so the same preset and seed give the same weights), in fp32 on
    the CPU, without safety checker. ``base=True``: a plain ``StableDiffusionPipeline`` with a 4-channel
    UNet instead (an SD 1.5-style base model without inpainting UNet, e.g. for ControlNet inpainting)."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = _check_preset(preset)
    tokenizer = build_tokenizer()
    text_kwargs = dict(cfg["text"])
    text_kwargs["vocab_size"] = text_kwargs["vocab_size"] or len(tokenizer)
    text_config = CLIPTextConfig(
        **text_kwargs,
        max_position_embeddings=MODEL_MAX_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # Seed each component separately so that changing one preset's config leaves the others' weights
    # alone; fork_rng keeps the caller's global RNG state untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(in_channels=4 if base else 9, out_channels=4, **cfg["unet"])
        torch.manual_seed(seed + 1)
        n_vae = len(cfg["vae"]["block_out_channels"])
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * n_vae,
            up_block_types=("UpDecoderBlock2D",) * n_vae,
            **cfg["vae"],
        )
        torch.manual_seed(seed + 2)
        text_encoder = CLIPTextModel(text_config)
    pipe = (StableDiffusionPipeline if base else StableDiffusionInpaintPipeline)(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=build_scheduler(preset),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe


def write_tiny_model(out_dir: str | Path, preset: str = "tiny", seed: int = 0, overwrite: bool = False,
                     base: bool = False) -> Path:
    """Save a random-weight pipeline of ``preset`` to ``out_dir`` (diffusers folder layout, safetensors).

    The folder appears complete or not at all: everything is written to a temporary sibling that is
    renamed into place. An existing ``out_dir`` is refused unless ``overwrite``. The folder also holds
    ``inpaint_kit.json`` recording the preset, the seed and that the weights are random."""
    from .images import replace_folder

    out_dir = Path(out_dir)
    _check_preset(preset)
    if out_dir.exists() and not overwrite:
        raise InpaintKitError(f"{out_dir} already exists; pass --overwrite to replace it or choose another --output_dir")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        pipe = build_pipeline(preset, seed, base=base)
        pipe.save_pretrained(tmp, safe_serialization=True)
        info = {"preset": preset, "seed": seed, "random_weights": True, **({"unet_in_channels": 4} if base else {})}
        (tmp / "inpaint_kit.json").write_text(json.dumps(info, indent=2) + "\n")
        replace_folder(tmp, out_dir)  # an old folder is moved aside first: a crash never loses both
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
