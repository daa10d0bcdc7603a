"""``inpaint-kit export``: a train-lora output as one checkpoint other tools load, or as a kohya/diffusers LoRA."""

from __future__ import annotations

HELP = ("Export a train-lora output: fused into its base model as one .safetensors checkpoint (A1111/ComfyUI "
        "layout) and/or a diffusers folder, or the LoRA alone in kohya or diffusers layout.")


def add_arguments(parser) -> None:
    from ..export import LORA_FORMATS, SAVE_DTYPES, ExportConfig
    from .flags import add_output_dir, add_overwrite, add_progress

    d = ExportConfig("")
    src = parser.add_argument_group("what to export")
    src.add_argument("--lora", required=True,
                     help="train-lora output folder, lora_unet.safetensors, or unet_partial_tuned.safetensors (--train attn)")
    src.add_argument("--lora_scale", type=float, default=d.lora_scale,
                     help="LoRA strength baked into the export (as infer --lora_scale)")
    src.add_argument("--model", default=None,
                     help="the base the LoRA was trained on (hub id, diffusers folder, .safetensors/.ckpt), for the fused outputs")
    src.add_argument("--cache_dir", default=None, help="Hugging Face cache folder for hub ids")

    fused = parser.add_argument_group("the LoRA fused into --model")
    fused.add_argument("--single_file", default=None, metavar="PATH.safetensors",
                       help="one checkpoint in the original layout (A1111, ComfyUI, Fooocus)")
    add_output_dir(fused, None, "a diffusers folder of the fused model (also the config folder infer --model PATH.safetensors "
                                "looks for when named like the file without .safetensors)")
    fused.add_argument("--dtype", choices=SAVE_DTYPES, default=d.dtype, help="dtype of the fused model's saved weights")

    alone = parser.add_argument_group("the LoRA alone")
    alone.add_argument("--lora_format", choices=LORA_FORMATS, default=None,
                       help="kohya: lora_unet_*/lora_te_* keys (A1111, ComfyUI); diffusers: pipe.load_lora_weights layout")
    alone.add_argument("--output", default=None, metavar="PATH.safetensors", help="the converted LoRA file")
    add_overwrite(parser, "existing output files / folders")
    add_progress(parser)


def run(args) -> int:
    from ..export import ExportConfig, export_adapter, export_fused

    cfg = ExportConfig(lora=args.lora, model=args.model, single_file=args.single_file, output_dir=args.output_dir,
                       lora_format=args.lora_format, output=args.output, lora_scale=args.lora_scale,
                       dtype=args.dtype, overwrite=args.overwrite, cache_dir=args.cache_dir).validate()
    if cfg.fuse:
        recipe = export_fused(cfg)
        what = "LoRA" if recipe["method"] == "fuse_lora" else "fine-tuned attention weights"
        for target in (cfg.single_file, cfg.output_dir):
            if target:
                print(f"wrote {target} ({cfg.model} with the {what} fused at scale {cfg.lora_scale}, {cfg.dtype})")
    if cfg.lora_format:
        out = export_adapter(cfg.lora, cfg.lora_format, cfg.output, cfg.lora_scale)
        print(f"wrote {out} ({cfg.lora_format} LoRA, scale {cfg.lora_scale} baked in)")
    return 0
