"""Engines fill working canvases. Every engine implements one interface (:mod:`.base`: ``fill`` a batch of
:class:`Canvas` items, ``inpaint`` the rows of a collage, ``describe`` what it used) and is found through
one registry (:mod:`.registry`), which other packages extend through the entry-point group
``inpaint_kit.engines`` (docs/engines.md). The built-in engines:

* ``sd`` (:mod:`.sd`): a diffusers Stable Diffusion inpainting pipeline (hub id, diffusers folder or
  single checkpoint; scheduler, LoRA / partial fine-tune from :mod:`.lora`);
* ``controlnet`` (:mod:`.controlnet`): an SD 1.5-family model steered by an inpaint ControlNet, on the SD
  engine's loop;
* ``ddpm`` (:mod:`.ddpm`): the from-scratch DDPM (``builtin`` or a ``train-ddpm`` folder; network and math
  in :mod:`inpaint_kit.ddpm`).

Their typed options are in :mod:`.options`. This package, :mod:`.base`, :mod:`.options` and
:mod:`.registry` do not import torch; an engine module is imported when its engine is loaded::

    engine = load_engine("path/or/hub-id", device=None, dtype="auto")
    results = engine.inpaint(image, mask, seeds=[1, 2, 3], sampling=Sampling(steps=30))
"""

from __future__ import annotations

from .base import (DEFAULT_MODEL, DTYPES, Canvas, Engine, RowsMixin, Sampling, call_seed, check_device, check_items,
                   fill_rows, resolve_device_dtype, row_images, to_float, to_uint8)
from .registry import is_ddpm_model, load_engine

__all__ = ["DEFAULT_MODEL", "DTYPES", "Canvas", "Engine", "RowsMixin", "Sampling", "call_seed", "check_device",
           "check_items", "fill_rows", "is_ddpm_model", "load_engine", "resolve_device_dtype", "row_images", "to_float",
           "to_uint8"]
