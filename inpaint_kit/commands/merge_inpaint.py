"""``inpaint-kit merge-inpaint``: an inpainting model from a text-to-image fine-tune (add difference)."""

from __future__ import annotations

HELP = ("Make an inpainting model from a fine-tune: UNet = --inpaint + alpha * (--custom - --base) "
        "(add difference), text encoder and VAE from the fine-tune; writes a diffusers folder (and one checkpoint).")

MODEL_HELP = "hub id, diffusers folder, or single .safetensors/.ckpt file (as infer --model)"


def add_arguments(parser) -> None:
    from ..merge import PART_SOURCES, SAVE_DTYPES, MergeConfig
    from .flags import add_output_dir, add_overwrite, add_progress

    d = MergeConfig("", "", "", "")
    models = parser.add_argument_group("the three models (one family: all SD 1.x or all SD 2.x)")
    models.add_argument("--inpaint", required=True, help=f"A, the official inpainting model (9-channel UNet): {MODEL_HELP}")
    models.add_argument("--base", required=True, help=f"B, the text-to-image model the fine-tune was trained from: {MODEL_HELP}")
    models.add_argument("--custom", required=True, help=f"C, your text-to-image fine-tune: {MODEL_HELP}")
    models.add_argument("--cache_dir", default=None, help="Hugging Face cache folder for hub ids")

    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--alpha", type=float, default=d.alpha,
                        help="how much of the fine-tune's difference (C - B) to add (0 = the inpainting model's UNet)")
    recipe.add_argument("--text_encoder_from", choices=PART_SOURCES, default=d.text_encoder_from,
                        help="take the text encoder and its tokenizer from the fine-tune (custom) or the inpainting model")
    recipe.add_argument("--vae_from", choices=PART_SOURCES, default=d.vae_from,
                        help="take the VAE from the fine-tune (custom) or the inpainting model")

    out = parser.add_argument_group("output")
    add_output_dir(out, None, "the merged model's diffusers folder (safetensors, with merge_config.json)", required=True)
    out.add_argument("--single_file", default=None, metavar="PATH.safetensors",
                     help="also write one checkpoint in the original (A1111/ComfyUI) layout; name it "
                          "<output_dir>.safetensors beside the folder and infer --model finds its configs")
    out.add_argument("--dtype", choices=SAVE_DTYPES, default=d.dtype,
                     help="dtype of the saved weights (the merge itself is computed in fp32)")
    add_overwrite(out, "an existing --output_dir / --single_file")
    add_progress(out)


def run(args) -> int:
    from pathlib import Path

    from ..merge import MergeConfig, merge_inpaint

    cfg = MergeConfig(inpaint=args.inpaint, base=args.base, custom=args.custom, output_dir=args.output_dir,
                      alpha=args.alpha, text_encoder_from=args.text_encoder_from, vae_from=args.vae_from,
                      single_file=args.single_file, dtype=args.dtype, overwrite=args.overwrite,
                      cache_dir=args.cache_dir).validate()
    recipe = merge_inpaint(cfg, progress=args.progress)
    print(f"wrote {cfg.output_dir} (unet = inpaint + {cfg.alpha} * (custom - base); text encoder from "
          f"{recipe['parts']['text_encoder']}, VAE from {recipe['parts']['vae']}, {cfg.dtype})")
    if cfg.single_file:
        print(f"wrote {cfg.single_file}")
        single = Path(cfg.single_file).expanduser()
        if Path(cfg.output_dir).expanduser().resolve() not in (single.with_suffix("").resolve(),
                                                               (single.parent / "config").resolve()):
            print(f"note: infer --model {single} looks for its configs in {single.with_suffix('')}/ or "
                  f"{single.parent / 'config'}/; the folder {cfg.output_dir} has them")
    return 0
