"""One definition per shared flag: the same concept has the same name, meaning and default in every
sub-command (docs/flags.md's "Shared flags" table lists them; tests/test_flags_table.py compares it with the
parsers). Old spellings stay accepted as hidden aliases, so existing scripts keep working, but ``--help``
shows one name.

Also here: the flags of the commands that run an engine (``infer``, ``outpaint``; ``ui`` and ``eval``
take some): model and sampling (:func:`add_model_arguments`), every registered engine's options
(:func:`add_engine_arguments`, from :mod:`inpaint_kit.engine.registry`), limits, output; and what those
commands do with them before and after the job: :func:`config_from_args`, :func:`preflight`,
:func:`sharded`, :func:`print_report`.

Nothing here imports torch: ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine import registry
from ..engine.base import DTYPES
from ..inpaint import InferConfig  # light (numpy, PIL): the defaults below are the config's, stated once
from ..masks import MASK_MODES

D = InferConfig()  # every inference flag's default comes from here


def alias(parser, *old: str, dest: str, **kwargs) -> None:
    """Accept ``old`` spellings of the flag stored in ``dest`` without listing them in ``--help``
    (``kwargs``: nargs/type/action/const as the canonical flag has them). The alias sets no default of
    its own (``SUPPRESS``), so the canonical flag's default stands."""
    parser.add_argument(*old, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)


def add_device(group, dtype: bool = False, dtype_default: str = "auto") -> None:
    """``--device`` (cuda, cuda:1, cpu; default: CUDA when available), ``--threads`` (torch CPU threads) and,
    for inference, ``--dtype``. ``cli.main`` applies ``--threads``; engines check ``--device`` before loading."""
    group.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: cuda if available, else cpu)")
    group.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's choice; 1 can be faster on a busy machine)")
    if dtype:
        group.add_argument("--dtype", choices=DTYPES, default=dtype_default,
                           help="auto = fp16 on CUDA, fp32 on CPU")


def add_output_dir(group, default: str | None, help: str, required: bool = False) -> None:
    """``--output_dir``: the folder a command writes into (``--out`` accepted as an old spelling).
    ``required`` is checked by ``cli.main`` after parsing (argparse's own check would refuse the alias)."""
    group.add_argument("--output_dir", default=default, help=help + (" (required)" if required else ""))
    alias(group, "--out", dest="output_dir")
    if required:
        require(group, "output_dir")


def require(group, *dests: str) -> None:
    """Mark flags as required when they have hidden aliases (argparse's ``required=True`` would refuse a
    command line that uses the alias); ``cli.main`` checks them after parsing, one line, exit 2."""
    group.set_defaults(_required=(*(group.get_default("_required") or ()), *dests))


def add_resume(group, what: str = "the newest checkpoint in --output_dir") -> None:
    """``--resume`` bare = ``latest`` (:func:`what`), or ``--resume PATH`` (a checkpoint or an output folder)."""
    group.add_argument("--resume", nargs="?", const="latest", default=None, metavar="PATH",
                       help=f"continue a run: bare (or 'latest') = {what}; or a checkpoint / output folder")


def add_overwrite(group, what: str = "outputs that already exist") -> None:
    """``--overwrite``: redo ``what`` instead of refusing or skipping them."""
    group.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def add_progress(group) -> None:
    """``--no_progress`` (no bars; plain lines when stdout is not a terminal anyway) and ``--verbose``."""
    group.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bars")
    group.add_argument("--verbose", action="store_true", help="also print library loading messages and warnings")


def add_shard(group) -> None:
    """``--shard i/n``: this job's share of a batch, for jobs launched independently (one per node of a
    cluster queue); processes started by torchrun / accelerate launch share a batch without it."""
    group.add_argument("--shard", default=None, metavar="I/N",
                       help="do only items k with k %% N == I of the sorted batch (0 <= I < N), e.g. 0/4 .. 3/4 "
                            "for four independent jobs; under torchrun / accelerate launch processes split "
                            "the batch by themselves")


# ----------------------------------------------------------------------------------------------------
# inference: model, sampling, engines, limits, output (infer, outpaint; ui and eval take some)


def add_model_arguments(p: argparse.ArgumentParser, mask_flags: bool = True) -> None:
    """Model and sampling flags shared by ``infer`` and ``outpaint`` (``mask_flags``: --mask_mode, --mask_blur)."""
    core = p.add_argument_group("model and sampling")
    core.add_argument("--model", default=D.model,
                      help="hub id, local diffusers folder, single .safetensors/.ckpt file, 'builtin', a trained DDPM "
                           "folder, or an engine's model name (" + ", ".join(e.name for e in registry.engines()) + ")")
    core.add_argument("--size", type=int, default=D.size, help="long side of the working canvas (sides rounded to multiples of 8)")
    core.add_argument("--steps", type=int, default=D.steps, help="denoising steps")
    core.add_argument("--guidance", type=float, default=D.guidance, help="classifier-free guidance scale (skipped when both prompts are empty)")
    core.add_argument("--prompt", default=D.prompt, help="text prompt (SD models)")
    core.add_argument("--negative_prompt", default=D.negative_prompt, help="negative prompt (SD models)")
    if mask_flags:
        core.add_argument("--mask_mode", choices=MASK_MODES, default=D.mask_mode, help="which mask colour marks the region to repair")
        core.add_argument("--mask_blur", type=int, default=D.mask_blur, help="feather the seam over N pixels just outside the mask")
    core.add_argument("--rows", type=int, default=D.rows, help="collage rows, one seed each")
    core.add_argument("--seed", type=int, default=D.seed, help="row i uses seed+i; 0 = random seeds (recorded in the outputs)")
    add_device(core, dtype=True, dtype_default=D.dtype)
    add_limits(core)


def add_engine_flag(group, f) -> None:
    """The flag ``--<name>`` of one engine option (a dataclass field made with
    :func:`inpaint_kit.engine.options.option`), with its hidden old spellings."""
    md = f.metadata
    kw = {"dest": f.name, "default": f.default, "help": md["help"]}
    if isinstance(f.default, bool):
        kw["action"] = "store_false" if f.default else "store_true"
    else:
        kw["type"] = md.get("type") or (type(f.default) if isinstance(f.default, (int, float)) else str)
        for key in ("choices", "metavar"):
            if md.get(key) is not None:
                kw[key] = md[key]
    group.add_argument(f"--{f.name}", **kw)
    for old in md.get("aliases", ()):
        alias(group, old, dest=f.name, **{k: v for k, v in kw.items() if k in ("type", "action", "choices")})


def add_engine_arguments(p: argparse.ArgumentParser, only: tuple[str, ...] | None = None, into=None) -> None:
    """Every registered engine's option flags (SD, ControlNet, DDPM, and engines of other packages), one
    ``--help`` section each (or all ``into`` one argument group); ``only``: just these flags."""
    sections: dict[str, argparse._ArgumentGroup] = {}
    for group in registry.option_groups():
        for f in registry.flag_fields(group.options):
            if only is not None and f.name not in only:
                continue
            title = f.metadata.get("group") or group.owner.flag_group
            if into is None and title not in sections:
                sections[title] = p.add_argument_group(title)
            add_engine_flag(into if into is not None else sections[title], f)


def add_ddpm_start_arguments(group) -> None:
    """--sampler, --init and --strength of the DDPM engine (``infer``, ``outpaint`` and ``eval``); None = the
    model's default."""
    add_engine_arguments(group, only=("sampler", "init", "strength"), into=group)


def add_area_arguments(p: argparse.ArgumentParser, default: str = D.area, why: str = ""):
    """``--area``, ``--padding`` and ``--large_windows``: where the model works (:mod:`inpaint_kit.geometry`;
    ``infer``, ``defect``). ``default``/``why``: a command whose default area differs says why. Returns the
    argument group (``infer`` adds ``--mask_dilate`` to it)."""
    from ..geometry import AREAS, LARGE

    area = p.add_argument_group("where the model works (large scans)")
    area.add_argument("--area", choices=AREAS, default=default,
                      help="full: the whole image scaled to --size; crops: windows around the damage at native "
                           "resolution; auto: crops when the image's long side exceeds --size, else full" + why)
    area.add_argument("--padding", type=int, default=D.padding, help="crops: context pixels kept around the damage")
    area.add_argument("--large_windows", choices=LARGE, default=D.large_windows,
                      help="crops: a window longer than --size is cut into overlapping native-resolution tiles, "
                           "or scaled down to --size")
    return area


def add_seam_arguments(p: argparse.ArgumentParser) -> None:
    """Seams and thin damage (docs/cracks.md): which filler takes which damage, and how a fill meets its
    surroundings (inside the mask only). (:mod:`inpaint_kit.seams`, :mod:`inpaint_kit.thinfill`; neither imports torch.)"""
    from ..seams import BLENDS, COLOUR_MATCHES
    from ..thinfill import THIN_FILLS

    g = p.add_argument_group("seams and thin damage (inside the mask only; docs/cracks.md)")
    g.add_argument("--blend", choices=BLENDS, default=D.blend,
                   help="correct the fill's mismatch with its surroundings along the mask edge: feather (a band "
                        "inside the edge), laplacian (multi-band: broad offsets far in, fine steps near the edge), "
                        "poisson (the fill's gradients, the original's edge values), or none")
    g.add_argument("--colour_match", choices=COLOUR_MATCHES, default=D.colour_match,
                   help="local: correct each region's colour by the offsets of the known pixels around it "
                        "(spatially varying, not one global shift)")
    g.add_argument("--thin_width", type=float, default=D.thin_width,
                   help="damage components at most this many pixels wide (largest inscribed circle) go to the "
                        "thin filler instead of --model; 0 = everything to --model")
    g.add_argument("--thin_fill", choices=THIN_FILLS, default=D.thin_fill,
                   help="the thin filler: auto (a small network refining OpenCV's Navier-Stokes fill, one pass, "
                        "deterministic), model (--model itself), telea / ns (OpenCV), builtin (the builtin "
                        "model's sampler, e.g. beside an SD --model)")
    g.add_argument("--thin_model", default=None,
                   help="a train-thinfill model folder for --thin_fill auto (default: the shipped one)")


def add_limits(group) -> None:
    """--max_work_megapixels and --max_image_megapixels (checked before any model loads)."""
    group.add_argument("--max_work_megapixels", type=float, default=D.max_work_megapixels,
                       help="refuse a --size whose square working canvas is larger (4.2 MP = 2048x2048); "
                            "crops mode works at native resolution in windows of at most --size")
    group.add_argument("--max_image_megapixels", type=float, default=D.max_image_megapixels,
                       help="refuse input images larger than this, before decoding them")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """Collage and resume flags shared by ``infer`` and ``outpaint``."""
    out = p.add_argument_group("output")
    out.add_argument("--collage_spacing_h", type=int, default=D.collage_spacing_h, help="pixels between tiles")
    out.add_argument("--collage_spacing_v", type=int, default=D.collage_spacing_v, help="pixels between rows")
    out.add_argument("--save_rows", action="store_true", help="also write each row as <stem>_row<i>_seed<seed>.png")
    add_overwrite(out, "existing outputs (default: skip those made with the same settings, so runs resume; "
                       "report those made with other settings)")
    add_progress(out)
    add_shard(p.add_argument_group("several processes (batch)"))


def options_from_args(args: argparse.Namespace, options_cls):
    """An engine's options from the flags given on the command line (its flag fields; the rest default)."""
    return options_cls(**{f.name: getattr(args, f.name) for f in registry.flag_fields(options_cls) if hasattr(args, f.name)})


def ddpm_options(args: argparse.Namespace):
    """The DDPM engine's options given on the command line (None = the model's default)."""
    from ..engine.options import DDPMOptions

    return options_from_args(args, DDPMOptions)


def config_from_args(args: argparse.Namespace, config_class=None, **extra):
    """The one place argparse values become an :class:`InferConfig` (or ``config_class``): every field
    with a flag of the same name, every engine's options kept as one field (``ddpm``, ...) from its
    flags, plus ``extra``; validated (values, engine flags, limits)."""
    from dataclasses import fields

    config_class = config_class or InferConfig
    nested = {g.field: options_from_args(args, g.options) for g in registry.option_groups() if g.field is not None}
    values = {f.name: getattr(args, f.name) for f in fields(config_class)
              if f.name not in (*nested, *extra) and hasattr(args, f.name)}
    return config_class(**values, **nested, **extra).validate()


def preflight(cfg, output: Path | None = None, output_dir: Path | None = None) -> None:
    """Everything checkable before a model loads, beyond ``cfg.validate()``: the device exists and the
    output locations (``output`` / ``output_dir``, and folders engine options write into, such as
    ``--save_intermediates``) can be written (one line, exit 2, no model loaded)."""
    from ..checks import check_output_dir, check_output_file
    from ..engine import check_device

    check_device(cfg.device)
    for flag, folder in registry.output_folders(cfg):
        check_output_dir(folder, flag=flag)
    if output is not None:
        check_output_file(output)
    if output_dir is not None:
        check_output_dir(output_dir)


def check_single_or_batch(args, single: bool) -> None:
    """What an image command (infer, outpaint, detect) checks once it knows whether it runs one image:
    ``--output`` names one file, ``--shard`` splits a batch; either given for the other mode is an error."""
    from ..errors import InpaintKitError

    if not single and args.output:
        raise InpaintKitError("--output names one file (single image); a batch writes into --output_dir")
    if single and args.shard:
        raise InpaintKitError("--shard splits a batch (--batch_imgs_dir); a single image is one job")


def sharded(cfg, args):
    """``(cfg, shard)``: this process's :class:`~inpaint_kit.shard.Shard` (``--shard`` and the launcher's
    ranks) and the config with the process's own device when several were launched and --device is unset."""
    from dataclasses import replace

    from ..shard import current, device_for, parse_shard

    parse_shard(args.shard)  # a malformed --shard fails before processes connect
    shard = current(args.shard, cfg.device)
    return replace(cfg, device=device_for(shard, cfg.device)), shard


def print_report(report, shard) -> int:
    """The batch summary, printed once for processes launched together (rank 0 has everyone's)."""
    if shard.is_main:
        head = f"[{shard.describe()}] " if shard.active else ""
        print(head + report.summary(), file=sys.stderr)
    return report.exit_code


def add_archive_arguments(p: argparse.ArgumentParser, record: bool = True, note: str = "") -> None:
    """Rows as drop-in replacements of archive masters, and the conservator's record (docs/archive.md).
    ``record`` False: only the row format and colour management (``defect``: see its ``--record`` error);
    ``note`` is added to ``--output_format``'s help."""
    g = p.add_argument_group("archive masters (docs/archive.md)")
    g.add_argument("--output_format", choices=("auto", "png", "tiff"), default=D.output_format,
                   help="rows: auto = TIFF in gives TIFF (same compression), anything else PNG (a JPEG/WebP is "
                        "never encoded lossily again; CMYK gives TIFF); rows keep depth, mode, alpha, ICC, dpi, EXIF, "
                        "XMP" + note)
    g.add_argument("--colour_management", choices=("on", "off"), default=D.colour_management,
                   help="on: an image with a non-sRGB ICC profile is converted to sRGB for the model and the fill "
                        "back to its profile (pixels outside the mask are never converted)")
    if not record:
        return
    g.add_argument("--record", action="store_true",
                   help="also write <stem>_mask.png, a fill layer per row and <stem>_record.json (sha256s, model, "
                        "settings, versions, repaired regions)")
    g.add_argument("--mark_fills", action="store_true",
                   help="also write <stem>_row<i>_seed<s>_marked.png: each row with every filled region outlined")
