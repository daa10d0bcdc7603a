"""The engine registry: every engine inpaint-kit can run, found by name or by the ``--model`` it takes.

An engine is one module (a loader returning an object with the :class:`~inpaint_kit.engine.base.Engine`
interface) plus one :class:`EngineSpec`: the built-in ones are listed in :data:`BUILTIN` below; another
package publishes its spec under the entry-point group ``inpaint_kit.engines`` (see docs/engines.md)::

    [project.entry-points."inpaint_kit.engines"]
    toy = "toy_engine:ENGINE"

Everything that depends on which engine runs reads this table, so nothing else changes for a new engine:
:func:`load_engine`; :class:`~inpaint_kit.inpaint.InferConfig`'s engine-option fields
(:func:`options_dataclass`) and their check (:func:`check_config`); the flags of ``infer`` / ``outpaint`` /
``ui`` (:mod:`inpaint_kit.commands.flags`); the UI's engine cache and model list; the metadata and the
A1111 infotext (:func:`sampler_name`).

Nothing here imports torch; engine modules are imported only when an engine is loaded.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass, field, fields, make_dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Mapping

from ..classical import CLASSICAL
from ..errors import UsageError
from ..recipe import folder_mark
from .base import DEFAULT_MODEL, Engine
from .options import DDPMOptions, SDOptions

log = logging.getLogger("inpaint_kit")

ENTRY_POINT_GROUP = "inpaint_kit.engines"


@dataclass(frozen=True)
class NoOptions:
    """The options of an engine that has none."""


@dataclass(frozen=True)
class EngineSpec:
    """One engine. Only ``name``, ``load`` and ``matches`` are required.

    * ``load``: ``"package.module:function"`` (imported when the engine is first loaded, so registering
      costs nothing) or the function itself: ``load(model, *, device=None, dtype="auto", options=None)``
      returning an :class:`~inpaint_kit.engine.base.Engine`; ``options`` is ``None`` or an ``options``
      instance.
    * ``matches(model, options) -> bool``: whether this engine takes ``--model model``; ``options`` is the
      engine's options instance, or ``None`` when unknown (the UI's model list). Engines are asked in
      ``order`` (lower first); when none answers, the default engine (``sd``) loads the model and says
      what is wrong with it.
    * ``options``: a frozen dataclass; its fields made with :func:`~inpaint_kit.engine.options.option`
      and a help text are the engine's flags (a plugin's flag names start with ``<name>_``). An options
      class may define ``validate()`` (one-line :class:`~inpaint_kit.errors.UsageError`, no model).
    * ``options_field``: the :class:`~inpaint_kit.inpaint.InferConfig` field that holds the options
      (default: the engine's name; ``None``: the options' fields are InferConfig fields themselves, as
      for SD). Engines with one options class share one place (``sd`` and ``controlnet``).
    * ``title``: how messages name the engine; ``prompts``: it reads ``--prompt`` / ``--negative_prompt`` /
      ``--guidance`` (else a given prompt is an error and none is recorded); ``steps``: it reads ``--steps``
      (else none is recorded).
    * A1111 infotext's "Sampler": ``sampler_names[v]`` (or ``v`` itself) for the first recorded value ``v``
      of the metadata keys ``sampler_keys``, else ``label`` (default: the name).
    """

    name: str
    load: str | Callable[..., Engine]
    matches: Callable[[str, Any], bool]
    options: type = NoOptions
    options_field: str | None = ""
    title: str = ""
    flag_group: str = ""
    prompts: bool = False
    steps: bool = True
    sampler_keys: tuple[str, ...] = ()
    sampler_names: Mapping[str, str] = field(default_factory=dict)
    label: str = ""
    order: int = 50

    def __post_init__(self):
        defaults = {"options_field": self.name, "title": f"the {self.name} engine", "label": self.name}
        for key, value in defaults.items():
            if getattr(self, key) == "":
                object.__setattr__(self, key, value)
        if not self.flag_group:
            object.__setattr__(self, "flag_group", f"{self.title} only")

    def loader(self) -> Callable[..., Engine]:
        """The load function (``"module:function"`` imported now)."""
        if callable(self.load):
            return self.load
        module, _, attr = self.load.partition(":")
        return getattr(importlib.import_module(module), attr)


# ----------------------------------------------------------------------------------------------------
# the built-in engines


def is_ddpm_model(model: str) -> bool:
    """True for ``builtin`` or a folder saved by the from-scratch trainer (config.json marks it)."""
    if model == "builtin":
        return True
    return not (Path(model) / "model_index.json").exists() and folder_mark(model) == "ddpm"


def is_opencv_model(model: str) -> bool:
    """True for ``telea`` and ``ns``: OpenCV's classical fills (:mod:`.opencv`)."""
    return str(model) in CLASSICAL


def is_sd_model(model: str) -> bool:
    """True for a diffusers folder (``model_index.json``) and anything that is not a folder (a hub id or a
    checkpoint file; the loader says what is wrong with it)."""
    path = Path(model).expanduser()
    return not path.is_dir() or (path / "model_index.json").is_file()


SD_SAMPLER_NAMES = {  # diffusers scheduler class (what the SD engines record) -> the sampler name A1111 shows
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "EulerDiscreteScheduler": "Euler",
    "DDIMScheduler": "DDIM",
    "PNDMScheduler": "PLMS",
    "UniPCMultistepScheduler": "UniPC",
    "DDPMScheduler": "DDPM",
    "LMSDiscreteScheduler": "LMS",
    "HeunDiscreteScheduler": "Heun",
}

BUILTIN = (  # listed in the order their options become InferConfig fields; matched by `order`
    EngineSpec("sd", "inpaint_kit.engine.sd:load_sd_engine", lambda model, options: is_sd_model(model),
               options=SDOptions, options_field=None, title="Stable Diffusion models", prompts=True,
               sampler_keys=("scheduler_class", "scheduler"), sampler_names=SD_SAMPLER_NAMES, label="default", order=100),
    EngineSpec("controlnet", "inpaint_kit.engine.controlnet:load", lambda model, options: bool(options and options.controlnet),
               options=SDOptions, options_field=None, title="Stable Diffusion models with --controlnet", prompts=True,
               sampler_keys=("scheduler_class", "scheduler"), sampler_names=SD_SAMPLER_NAMES, label="default", order=90),
    EngineSpec("ddpm", "inpaint_kit.engine.ddpm:load_ddpm_engine", lambda model, options: is_ddpm_model(model),
               options=DDPMOptions, title="the builtin / DDPM engine", flag_group="builtin / DDPM models only",
               sampler_keys=("sampler",), sampler_names={"ddpm": "DDPM", "ddim": "DDIM", "repaint": "RePaint"},
               label="DDPM", order=10),
    EngineSpec("opencv", "inpaint_kit.engine.opencv:load_opencv_engine", lambda model, options: is_opencv_model(model),
               title="OpenCV's classical fill", steps=False, sampler_keys=("model",),
               sampler_names={"telea": "OpenCV Telea", "ns": "OpenCV Navier-Stokes"}, label="OpenCV", order=5),
)
DEFAULT_ENGINE = "sd"  # loads (and explains) a --model no engine recognises


# ----------------------------------------------------------------------------------------------------
# the table: built-in engines, then those of installed packages


def _plugin_problem(spec, ep, taken: set[str]) -> str | None:
    """Why an entry point's object cannot be registered (None when it can)."""
    if not isinstance(spec, EngineSpec):
        return f"it is a {type(spec).__name__}, not an inpaint_kit.engine.registry.EngineSpec"
    if spec.name != ep.name:
        return f"its EngineSpec is named {spec.name!r}; name the entry point the same"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", spec.name):
        return "engine names are lowercase identifiers (a-z, 0-9, _)"
    if spec.name in taken:
        return f"the engine name {spec.name!r} is taken"
    wrong = [f.name for f in flag_fields(spec.options) if not f.name.startswith(f"{spec.name}_")]
    if wrong:
        return f"its flags must start with {spec.name}_ (got --{', --'.join(wrong)})"
    return None


@lru_cache(maxsize=None)
def _plugins() -> tuple[EngineSpec, ...]:
    """Engines published by installed packages under :data:`ENTRY_POINT_GROUP`, read once per process.
    One that cannot be loaded is skipped with a warning (inpaint-kit keeps working without it)."""
    found, taken, seen = [], {s.name for s in BUILTIN}, set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) in seen:
            continue  # the same distribution found twice on sys.path
        seen.add((ep.name, ep.value))
        try:
            spec = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break inpaint-kit
            log.warning("engine %s (%s, entry point %s) cannot be imported: %s; skipped", ep.name, ep.value,
                        ENTRY_POINT_GROUP, e)
            continue
        problem = _plugin_problem(spec, ep, taken)
        if problem:
            log.warning("engine %s (%s, entry point %s): %s; skipped", ep.name, ep.value, ENTRY_POINT_GROUP, problem)
            continue
        found.append(spec)
        taken.add(spec.name)
    return tuple(found)


def engines() -> list[EngineSpec]:
    """Every registered engine, in matching order."""
    return sorted((*BUILTIN, *_plugins()), key=lambda s: s.order)


def get(name: str) -> EngineSpec | None:
    """The engine registered as ``name`` (None if there is none)."""
    return next((s for s in engines() if s.name == name), None)


def find(model: str, options_for: Callable[[EngineSpec], Any] | None = None) -> EngineSpec:
    """The engine for ``--model model``: the first (in ``order``) whose ``matches(model, options)`` is true,
    ``options`` being ``options_for(spec)`` (None when not given); else the default engine."""
    for spec in engines():
        if spec.matches(model, options_for(spec) if options_for else None):
            return spec
    return get(DEFAULT_ENGINE)


def recognizes(model: str) -> bool:
    """True when an engine says it takes ``model`` by itself (not by default): the UI lists such folders."""
    return any(spec.matches(model, None) for spec in engines())


def load_engine(model: str = DEFAULT_MODEL, *, device: str | None = None, dtype: str = "auto",
                options=None) -> Engine:
    """Load the engine for ``model`` (see :func:`find`) with ``options`` (None = the engine's defaults): a
    DDPM folder or ``builtin`` takes :class:`~.options.DDPMOptions`; an SD model (hub id, diffusers folder,
    single ``.safetensors``/``.ckpt`` file) :class:`~.options.SDOptions` (with ``controlnet`` set: the
    ControlNet engine); other engines their own. Options of another engine's type are a one-line
    :class:`~inpaint_kit.errors.UsageError`."""
    spec = find(model, lambda s: options if isinstance(options, s.options) else None)
    if options is not None and not isinstance(options, spec.options):
        raise UsageError(f"--model {model} takes {spec.options.__name__}, not {type(options).__name__}")
    return spec.loader()(model, device=device, dtype=dtype, options=options)


# ----------------------------------------------------------------------------------------------------
# options: where InferConfig keeps them, which are flags, which were given


@dataclass(frozen=True)
class OptionGroup:
    """One options class and where InferConfig keeps it (``field`` None: flat), with the engines using it."""

    options: type
    field: str | None
    specs: tuple[EngineSpec, ...]

    @property
    def owner(self) -> EngineSpec:
        """The engine that registered the class first: it names the flags' owner in messages."""
        return self.specs[0]


def option_groups() -> list[OptionGroup]:
    """One :class:`OptionGroup` per options class with fields, in registration order (built-in first)."""
    groups: dict[type, list[EngineSpec]] = {}
    for spec in (*BUILTIN, *_plugins()):
        if fields(spec.options):
            groups.setdefault(spec.options, []).append(spec)
    return [OptionGroup(cls, specs[0].options_field, tuple(specs)) for cls, specs in groups.items()]


def flag_fields(options_cls) -> list:
    """The fields of an options class that are command-line flags (those with a help text)."""
    return [f for f in fields(options_cls) if f.metadata.get("help")]


def given(options) -> dict:
    """The fields of ``options`` that differ from their defaults (what the user asked for)."""
    default = type(options)()
    return {f.name: getattr(options, f.name) for f in fields(options)
            if getattr(options, f.name) != getattr(default, f.name)}


def options_of(group: OptionGroup, config):
    """The options instance of ``group`` held by ``config`` (an InferConfig)."""
    if group.field is None:
        return group.options(**{f.name: getattr(config, f.name) for f in fields(group.options)})
    value = getattr(config, group.field)
    if not isinstance(value, group.options):
        raise UsageError(f"engine {group.owner.name}: InferConfig.{group.field} is a {type(value).__name__}, not "
                         f"{group.options.__name__} (an engine may not be named like an inpaint-kit setting)")
    return value


def group_of(spec: EngineSpec) -> OptionGroup | None:
    """The option group of ``spec`` (None for an engine without options)."""
    return next((g for g in option_groups() if g.options is spec.options), None)


def spec_options(spec: EngineSpec, config):
    """``spec``'s options held by ``config`` (None for an engine without options)."""
    group = group_of(spec)
    return options_of(group, config) if group else None


@lru_cache(maxsize=None)
def options_dataclass() -> type:
    """A dataclass whose fields are every engine's options as :class:`~inpaint_kit.inpaint.InferConfig`
    keeps them (its base class): flat fields (SD's ``scheduler``, ``lora``, ...) and one field per
    nested options class (``ddpm``, and one per engine with options from another package)."""
    spec = []
    for group in option_groups():
        if group.field is None:
            for f in fields(group.options):
                spec.append((f.name, f.type, field(default=f.default)))
        else:
            spec.append((group.field, group.options.__name__, field(default_factory=group.options)))
    return make_dataclass("EngineOptions", spec, namespace={"__doc__": "Every engine's options (see registry)."})


def config_fields() -> tuple[str, ...]:
    """The InferConfig fields that hold engine options (what :meth:`Engine.describe` reports instead)."""
    return tuple(f.name for f in fields(options_dataclass()))


def check_config(config) -> EngineSpec:
    """The engine ``config.model`` selects, after checking ``config``'s engine options: each options
    class's own ``validate()``, then a one-line :class:`UsageError` naming the first flag that belongs to
    another engine (or a prompt for an engine that reads none). Nothing is loaded."""
    groups = option_groups()
    for group in groups:
        validate = getattr(options_of(group, config), "validate", None)
        if validate is not None:
            validate()
    spec = find(config.model, lambda s: spec_options(s, config))
    where = f"--model {config.model} ({spec.title})"
    for group in groups:
        if group.options is spec.options:
            continue
        for name, value in given(options_of(group, config)).items():
            raise UsageError(f"--{name} {value} does not apply to {where}; it is for {group.owner.title}: "
                             f"leave it out or choose another --model")
    if not spec.prompts:
        for name in ("prompt", "negative_prompt"):
            if getattr(config, name, None):
                raise UsageError(f"--{name} {getattr(config, name)} does not apply to {where}; it is for engines that "
                                 f"read prompts ({get(DEFAULT_ENGINE).title}): leave it out or choose another --model")
    return spec


def output_folders(config) -> list[tuple[str, str]]:
    """``(flag, folder)`` of every engine option naming a folder to write (``output_dir`` in its metadata)
    that ``config`` sets: checked before any model loads."""
    found = []
    for group in option_groups():
        options = options_of(group, config)
        for f in flag_fields(group.options):
            if f.metadata.get("output_dir") and getattr(options, f.name):
                found.append((f"--{f.name}", getattr(options, f.name)))
    return found


def sampler_name(meta: dict) -> str:
    """The A1111 "Sampler" of an output from its recorded parameters (``engine`` names the engine; records
    without one are SD's)."""
    spec = get(meta.get("engine") or DEFAULT_ENGINE)
    if spec is None:  # made by an engine that is not installed here
        return str(meta.get("sampler") or meta["engine"])
    value = next((meta[k] for k in spec.sampler_keys if meta.get(k) is not None), None)
    return spec.sampler_names.get(str(value), str(value)) if value is not None else spec.label
