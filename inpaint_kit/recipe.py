"""The recipe of a model that inpaint-kit made (``merge-inpaint``, ``export``): which models went in, their
sha256, the settings, and which part came from where. It travels with the model, so every image made
with it can say what it was made with:

* a diffusers folder holds it as ``merge_config.json``;
* a single ``.safetensors`` checkpoint holds it as JSON in its header metadata (key ``inpaint_kit_recipe``),
  which other tools keep and show.

:func:`read_recipe` is what the SD engine's ``describe()`` calls, so the recipe lands in the PNG metadata
of every output.

The package's own networks (the DDPM inpainter, the thin filler, the damage detector) are folders whose
``config.json`` says which kind they are under ``"_inpaint_kit"``: :func:`folder_mark` reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

RECIPE_FILE = "merge_config.json"
METADATA_KEY = "inpaint_kit_recipe"


def folder_mark(folder: str | Path) -> str | None:
    """The ``"_inpaint_kit"`` mark of ``folder``'s ``config.json`` (``"ddpm"``, ``"thinfill"``,
    ``"detector"``), or None when there is no such file or it is not readable JSON."""
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text()).get("_inpaint_kit") if path.is_file() else None
    except (OSError, ValueError, AttributeError):  # AttributeError: JSON that is not an object
        return None


def read_recipe(model: str | Path) -> dict | None:
    """The recipe of ``model`` (a diffusers folder or a single checkpoint file), or None when it has none
    (a hub id, a model not made by inpaint-kit, an unreadable recipe)."""
    path = Path(str(model)).expanduser()
    try:
        if path.is_dir():
            file = path / RECIPE_FILE
            return json.loads(file.read_text()) if file.is_file() else None
        if path.is_file() and path.suffix.lower() == ".safetensors":
            text = safetensors_metadata(path).get(METADATA_KEY)
            return json.loads(text) if text else None
    except Exception:  # noqa: BLE001 (safetensors raises its own error types for broken headers)
        return None  # provenance is best effort: a broken recipe never stops an inpainting run
    return None


def write_recipe(folder: str | Path, recipe: dict) -> Path:
    """Write ``recipe`` as ``merge_config.json`` into ``folder`` (a folder being assembled, renamed into
    place as a whole afterwards)."""
    file = Path(folder) / RECIPE_FILE
    file.write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    return file


def recipe_metadata(recipe: dict) -> dict[str, str]:
    """safetensors header metadata (strings only) carrying ``recipe``."""
    return {"format": "pt", METADATA_KEY: json.dumps(recipe, sort_keys=True)}


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (its header only; no tensor is read)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return f.metadata() or {}
