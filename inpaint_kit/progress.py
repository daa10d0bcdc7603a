"""Progress that reads well on a terminal and in a log file.

- On a terminal: one bar per batch (images) and one labelled bar for the denoising steps of the image
  being worked on; libraries' own bars (diffusers' "Loading pipeline components", transformers'
  "Loading weights", the pipelines' step bars) are off unless ``--verbose``.
- Not a terminal (a log file, CI): no bars at all, one plain line per finished item.
- Known harmless third-party warnings are dropped at their logger (``--verbose`` shows them).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager

from tqdm import tqdm

# Messages that say nothing a user can act on, matched by substring at the logger that emits them.
KNOWN_NOISE = {
    # transformers 5 without torchvision: CLIP's image processor falls back to PIL (we never use it)
    "transformers.utils.import_utils": ("requires torchvision (not installed)",),
}

_state = {"verbose": False, "enabled": True, "force": False}


class _DropKnown(logging.Filter):
    def __init__(self, needles: tuple[str, ...]):
        super().__init__()
        self.needles = needles

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in self.needles)


def configure(verbose: bool = False, enabled: bool = True, force: bool = False) -> None:
    """Called once by the CLI (``--verbose``, ``--no_progress``) before any heavy import; ``force``: bars
    even without a terminal (the browser UI shows them through gradio's tqdm tracking)."""
    _state.update(verbose=verbose, enabled=enabled, force=force)
    if verbose:
        return
    for name, needles in KNOWN_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) for f in logger.filters):  # configure() may run many times
            logger.addFilter(_DropKnown(needles))
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def verbose() -> bool:
    return _state["verbose"]


def interactive() -> bool:
    """Bars only on a terminal (tqdm writes to stderr) and when not turned off."""
    return _state["enabled"] and (_state["force"] or sys.stderr.isatty())


def quiet_loading() -> None:
    """Turn off diffusers' and transformers' own bars and info messages (model loading, weight shards)
    unless ``--verbose``; engines call this before ``from_pretrained``."""
    if _state["verbose"]:
        return
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()


def steps_bar(total: int, desc: str = "steps", enabled: bool = True):
    """The denoising-steps bar of one image (``total`` known up front, so UIs can show a fraction);
    a silent bar when not interactive."""
    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=not (enabled and interactive()))


def items(iterable, total: int | None = None, desc: str = "images", unit: str = "img", enabled: bool = True):
    """Iterate ``iterable`` with one bar (terminal) or one plain line per item (log file): ``desc i/n
    (elapsed)``. The line is printed when the next item starts, so it follows the item's own messages."""
    total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    if interactive() and enabled:
        yield from tqdm(iterable, total=total, desc=desc, unit=unit)
        return
    start = time.perf_counter()
    done = 0
    for item in iterable:
        yield item
        done += 1
        if enabled and _state["enabled"]:
            of = f"/{total}" if total is not None else ""
            print(f"{desc}: {done}{of} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)


def write(message: str) -> None:
    """Print a line without breaking an active bar."""
    tqdm.write(message, file=sys.stderr)


@contextmanager
def silenced():
    """Progress output off inside the block (the Python API's default)."""
    old = dict(_state)
    _state["enabled"] = False
    try:
        yield
    finally:
        _state.update(old)
