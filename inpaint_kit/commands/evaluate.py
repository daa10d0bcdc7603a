"""``inpaint-kit eval``: score inpainting methods inside reproducible random masks on held-out photos."""

from __future__ import annotations

HELP = "score methods (builtin, telea, ns, model paths) by PSNR / SSIM / gradient energy inside random masks"


def add_arguments(p) -> None:
    from .flags import add_device, add_progress, alias, require
    from .flags import add_ddpm_start_arguments

    p.add_argument("--data", help="folder of ground-truth photos (searched recursively; required)")
    alias(p, "--images", dest="data")
    require(p, "data")
    p.add_argument("--mask_kinds", default="thin,thick,center,stripes,irregular",
                   help="comma-separated mask generators (inpaint_kit.maskgen: thin, thick, craquelure, ...)")
    p.add_argument("--methods", default="builtin,telea,ns",
                   help="comma-separated: builtin, telea, ns, or paths to train-ddpm / SD inpainting models")
    p.add_argument("--seed", type=int, default=0, help="masks and diffusion noise are drawn from this seed")
    p.add_argument("--size", type=int, default=256, help="images are scaled so that the long side is this")
    p.add_argument("--steps", type=int, default=20, help="sampling steps for diffusion methods")
    ddpm = p.add_argument_group("DDPM models only")
    add_ddpm_start_arguments(ddpm)
    # as infer's: None = the model's default (10 each for RePaint)
    ddpm.add_argument("--jump_length", type=int, default=None, help="RePaint jump length")
    ddpm.add_argument("--jump_n_sample", type=int, default=None, help="RePaint resamplings per jump")
    add_device(p)
    p.add_argument("--output", default=None,
                   help="also write the scores to this file: the markdown table if it ends in .md, else JSON "
                        "(config and raw scores)")
    alias(p, "--out", dest="output")  # eval's old spelling, which has always named this file (elsewhere: --output_dir)
    add_progress(p)


def run(args) -> int:
    from ..checks import check_output_file
    from ..engine import check_device
    from ..engine.options import DDPMOptions
    from ..evaluate import EvalConfig, format_table, run_eval

    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    ddpm = DDPMOptions(sampler=args.sampler, init=args.init, strength=args.strength,  # None = the model's
                       jump_length=args.jump_length, jump_n_sample=args.jump_n_sample)
    cfg = EvalConfig(data=args.data, mask_kinds=split(args.mask_kinds), methods=split(args.methods),
                     seed=args.seed, size=args.size, steps=args.steps, output=args.output, device=args.device,
                     ddpm=ddpm)
    check_device(cfg.device)  # before any model loads
    if cfg.output:
        check_output_file(cfg.output)
    scores = run_eval(cfg, progress=args.progress)
    print(format_table(scores))
    return 0
