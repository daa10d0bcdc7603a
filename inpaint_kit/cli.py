"""The ``inpaint-kit`` command line: one sub-command per module in :mod:`inpaint_kit.commands` (the ``train-*``
commands are rows of one table, ``module:name`` below: :mod:`inpaint_kit.commands.training`).

Each command defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` and imports
torch/diffusers only inside ``run`` so that ``--help`` is instant. This is the only place where
exceptions become exit codes: an :class:`InpaintKitError` prints one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import SimpleNamespace

from .version import __version__
from .errors import InpaintKitError

COMMANDS = {
    "infer": "inpaint_kit.commands.infer",
    "outpaint": "inpaint_kit.commands.outpaint",
    "tiny-model": "inpaint_kit.commands.tiny_model",
    "train-lora": "inpaint_kit.commands.training:train-lora",
    "train-ddpm": "inpaint_kit.commands.training:train-ddpm",
    "train-thinfill": "inpaint_kit.commands.training:train-thinfill",
    "train-controlnet": "inpaint_kit.commands.training:train-controlnet",
    "eval": "inpaint_kit.commands.evaluate",
    "ui": "inpaint_kit.commands.ui",
    "train-defect": "inpaint_kit.commands.training:train-defect",
    "defect": "inpaint_kit.commands.defect",
    "merge-inpaint": "inpaint_kit.commands.merge_inpaint",
    "export": "inpaint_kit.commands.export",
    "detect": "inpaint_kit.commands.detect",
    "train-detect": "inpaint_kit.commands.training:train-detect",
    "eval-detect": "inpaint_kit.commands.eval_detect",
}


def load_command(name: str):
    """The command ``name``: its module, or for ``module:entry`` the entry of that module's ``command()`` table
    (``HELP``, ``add_arguments``, ``run`` as attributes either way)."""
    module_name, _, entry = COMMANDS[name].partition(":")
    module = importlib.import_module(module_name)
    if not entry:
        return module
    help_text, add_arguments, run = module.command(entry)
    return SimpleNamespace(HELP=help_text, add_arguments=add_arguments, run=run)


def _available():
    for name in COMMANDS:
        try:
            yield name, load_command(name)
        except ModuleNotFoundError as e:
            if e.name != COMMANDS[name].partition(":")[0]:  # a real missing dependency, not a command not written yet
                raise


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where to look, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser (or, with ``only``, just one command's, for the ``scripts/`` front-ends)."""
    if only is not None:
        module = load_command(only)
        parser = Parser(description=module.HELP, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(parser)
        parser.set_defaults(_run=module.run)
        return parser
    parser = Parser(
        prog="inpaint-kit", description="Diffusion inpainting for restoration: inference, training, evaluation.")
    parser.add_argument("--version", action="version", version=f"inpaint-kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in _available():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None, only: str | None = None) -> int:
    """Parse ``argv`` and run the command; returns (and, as a console script, exits with) its code."""
    parser = build_parser(only)
    args = parser.parse_args(argv)
    missing = [f"--{d}" for d in getattr(args, "_required", ()) if getattr(args, d, None) is None]
    if missing:  # required flags that have hidden aliases (see commands.flags.add_output_dir)
        print(f"{parser.prog} {args.command if hasattr(args, 'command') else ''}: error: the following arguments "
              f"are required: {', '.join(missing)} (see --help)".replace("  ", " "), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    from . import progress

    # before any command imports torch/diffusers: library messages and bars off unless --verbose
    progress.configure(verbose=getattr(args, "verbose", False), enabled=getattr(args, "progress", True))
    try:
        if getattr(args, "threads", None) is not None:
            if args.threads < 1:
                raise InpaintKitError(f"--threads must be >= 1 (got {args.threads})")
            import torch

            torch.set_num_threads(args.threads)
        return int(args._run(args) or 0)
    except InpaintKitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())
