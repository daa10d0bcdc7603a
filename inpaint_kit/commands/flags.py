"""One definition per shared flag: the same concept has the same name, meaning and default in every
sub-command (the README's "Shared flags" table lists them). Old spellings stay accepted as hidden aliases,
so existing scripts keep working, but ``--help`` shows one name.

Nothing here imports torch: ``--help`` stays instant.
"""

from __future__ import annotations

import argparse

DTYPES = ("auto", "fp32", "fp16", "bf16")


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
