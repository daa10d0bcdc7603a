"""``inpaint-kit eval``: score inpainting methods inside reproducible random masks on held-out photos."""

from __future__ import annotations

HELP = "score methods (builtin, telea, ns, model paths) by PSNR / SSIM / gradient energy inside random masks"


def add_arguments(p) -> None:
    from .infer import add_ddpm_start_arguments

    p.add_argument("--images", required=True, help="folder of ground-truth photos (searched recursively)")
    p.add_argument("--mask_kinds", default="thin,thick,center,stripes,irregular",
                   help="comma-separated mask generators (see inpaint_kit.masks.MASK_KINDS)")
    p.add_argument("--methods", default="builtin,telea,ns",
                   help="comma-separated: builtin, telea, ns, or paths to train-ddpm / SD inpainting models")
    p.add_argument("--seed", type=int, default=0, help="masks and diffusion noise are drawn from this seed")
    p.add_argument("--size", type=int, default=256, help="images are scaled so that the long side is this")
    p.add_argument("--steps", type=int, default=20, help="sampling steps for diffusion methods")
    add_ddpm_start_arguments(p.add_argument_group("DDPM models only"))
    p.add_argument("--jump_length", type=int, default=10, help="RePaint only")
    p.add_argument("--jump_n_sample", type=int, default=10, help="RePaint only")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--out", default=None, help="also write the table to this .md file (or raw scores to .json)")


def run(args) -> int:
    from ..evaluate import EvalConfig, format_table, run_eval

    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    cfg = EvalConfig(images=args.images, mask_kinds=split(args.mask_kinds), methods=split(args.methods),
                     seed=args.seed, size=args.size, steps=args.steps, sampler=args.sampler, out=args.out,
                     ddpm_options={"jump_length": args.jump_length, "jump_n_sample": args.jump_n_sample,
                                   "init": args.init, "strength": args.strength})  # None = the model's
    scores = run_eval(cfg)
    print(format_table(scores))
    return 0
