"""``inpaint-kit train-ddpm``: train the from-scratch diffusion inpainter on a folder of images."""

from __future__ import annotations

HELP = "train the from-scratch DDPM inpainter on any folder of images (CPU-friendly)"


def add_arguments(p) -> None:
    from ..masks import MASK_KINDS

    p.add_argument("--data", required=True, help="folder of training images (searched recursively)")
    p.add_argument("--out", required=True, help="output model folder (config.json + model.safetensors + checkpoint)")
    p.add_argument("--size", type=int, default=64, help="training window side (a multiple of the network's downsampling)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=2000, help="total optimisation steps (including resumed ones)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=100, help="linear LR warmup steps, then cosine decay")
    p.add_argument("--loss_region", choices=("masked", "all"), default="masked", help="where the noise MSE is averaged")
    p.add_argument("--ema_decay", type=float, default=0.999)
    p.add_argument("--preset", default="small", help="network size: tiny, small, base")
    p.add_argument("--conditioning", choices=("concat", "unconditional"), default="concat")
    p.add_argument("--schedule", choices=("cosine", "linear"), default="cosine")
    p.add_argument("--prediction", choices=("epsilon", "v"), default="epsilon",
                   help="network target: the noise (epsilon) or v = sqrt(ab) noise - sqrt(1-ab) x0")
    p.add_argument("--init_from", default=None, help="start from this model folder's weights (same architecture)")
    p.add_argument("--mask_kinds", default=",".join(MASK_KINDS), help="comma-separated mask generators to train on")
    p.add_argument("--min_scale", type=float, default=0.35, help="smallest crop scale relative to the native image")
    p.add_argument("--max_scale", type=float, default=1.0)
    p.add_argument("--focus_strength", type=float, default=1.0,
                   help="with --focus_fraction: draw that share of timesteps below this noise level (0-1]")
    p.add_argument("--focus_fraction", type=float, default=0.0,
                   help="share of timesteps drawn below --focus_strength (train where --init/--strength sampling works)")
    p.add_argument("--colour_weight", type=float, default=1.0, help="draw colour photos this many times as often as grey")
    p.add_argument("--permute_channels", type=float, default=0.0, help="probability of shuffling a window's RGB channels")
    p.add_argument("--save_every", type=int, default=250, help="checkpoint + export EMA model every N steps")
    p.add_argument("--sample_every", type=int, default=0, help="write a sample grid to OUT/samples every N steps (0 = never)")
    p.add_argument("--log_every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--stop_after", type=int, default=None,
                   help="checkpoint and exit after this step, keeping the LR schedule of --steps (resume later)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def run(args) -> int:
    from ..ddpm.train import TrainConfig, train

    cfg = TrainConfig(
        data=args.data, out=args.out, size=args.size, batch=args.batch, steps=args.steps, lr=args.lr,
        warmup=args.warmup, loss_region=args.loss_region, ema_decay=args.ema_decay, preset=args.preset,
        conditioning=args.conditioning, schedule=args.schedule,
        prediction=args.prediction, init_from=args.init_from,
        mask_kinds=tuple(k.strip() for k in args.mask_kinds.split(",") if k.strip()),
        min_scale=args.min_scale, max_scale=args.max_scale,
        focus_strength=args.focus_strength, focus_fraction=args.focus_fraction,
        colour_weight=args.colour_weight, permute_channels=args.permute_channels, save_every=args.save_every,
        sample_every=args.sample_every, log_every=args.log_every, seed=args.seed, resume=args.resume,
        stop_after=args.stop_after, threads=args.threads,
    )
    out = train(cfg)
    print(f"saved {out}")
    return 0
