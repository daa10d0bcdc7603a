"""A detector folder on disk, without torch: its file names and how to recognise one (``--model DIR``,
``--detect_model DIR`` are checked with it before any model loads; :mod:`inpaint_kit.detect.network`
writes and reads the folders)."""

from __future__ import annotations

from pathlib import Path

from ..recipe import folder_mark

MARKER = "detector"  # config.json["_inpaint_kit"]: a damage-detector model folder
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def is_detector_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a detector's ``config.json`` (a folder of another model is not one)."""
    return folder_mark(folder) == MARKER
