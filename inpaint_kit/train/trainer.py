"""The training machinery every inpaint-kit trainer shares, on accelerate: ``MyTrainer(cfg).run()``.

Every trainer has the same shape: a folder ``inpaint_kit/train/<trainer>/`` with ``config.py`` (its config
dataclass, no torch), ``data.py`` (what a draw loads) and ``trainer.py`` (a :class:`Trainer` subclass and
``train(cfg)``); the ``train-<trainer>`` command is one row of :data:`inpaint_kit.commands.training.
TRAIN_COMMANDS`. See ``train/lora/``, ``train/controlnet/``, ``train/ddpm/``, ``train/defect/``.

What the base class does (a subclass writes none of it): one-line checks before any model loads (config,
device, ``--output_dir`` not holding another run unless ``--resume``/``--overwrite``, the ``--resume``
checkpoint's identity card), removal of temp files left by killed saves, accelerate setup (CPU / GPU / many
processes, ``--mixed_precision``), placing the models on the device in the right dtypes (:meth:`place`),
AdamW with ``--lr_scheduler``/``--warmup_steps`` (diffusers' ``get_scheduler``), gradient accumulation and
clipping, NaN/inf updates skipped and counted, TensorBoard in ``<output_dir>/logs``, a tqdm bar with the
loss, atomic checkpoints every ``--save_every`` keeping ``--checkpoints_total_limit``, exact ``--resume``,
``--stop_after``, a checkpoint on Ctrl-C, periodic validation, ``training_config.json``, and the messages of
a run, printed by the main process only (:meth:`print`), ending with its one-line :meth:`summary`. Layout on
disk: :mod:`inpaint_kit.train.checkpoint`.

Writing a trainer (see :class:`inpaint_kit.train.lora.trainer.LoraTrainer` and
:mod:`inpaint_kit.train.ddpm.trainer`)::

    @dataclass
    class MyConfig(TrainerConfig):           # train/my/config.py: fields declared with option()
        model: str = option("...", help="...")
        steps: int = redefault(TrainerConfig, "steps", 2000)

    class MyTrainer(Trainer):               # train/my/trainer.py
        name = "train-my"                   # progress label, TensorBoard run, checkpoint owner
        weights_names = ("my.safetensors",) # files in output_dir that mark a run (refused without --resume)
        def build_data(self): ...           # find and check the data: before any model loads
        def build_models(self): ...         # build/load models; freeze what does not train; self.place(...)
        def trainable_modules(self): ...    # [modules with trainable parameters], prepared in this order
        def micro_loss(self, micro): ...    # scalar loss of micro-batch number ``micro`` (see draws())
        def save_weights(self): ...         # final weights in their inference format -> Path (main process)

Optional hooks: ``model_fingerprint()`` (identity of the base model, refused on resume when it differs),
``after_update()`` (e.g. an EMA step), ``save_extra(folder)`` / ``load_extra(folder, state)`` (more state in
a checkpoint: write safetensors, never pickles), ``validate()`` (a preview, see :meth:`save_preview`; main
process; enables ``--validate_every``), ``record()`` (extra keys for ``training_config.json``),
``summary(result)`` (the closing line).

Inside ``micro_loss`` use ``self.models[i]`` (the prepared, possibly DDP-wrapped modules, in the order
``trainable_modules`` returned them: call them for the forward pass so gradients are synchronised),
``self.acc.device`` and ``self.weight_dtype`` (the dtype of frozen weights under mixed precision).

Randomness and processes: every draw of update ``s`` comes from :meth:`Trainer.draws` (the global numbers of
this process's samples in micro-batch ``micro``) and :meth:`Trainer.generators` (one CPU generator per
sample, seeded by ``(seed, stream, draw)``). Sample ``d`` is therefore the same whatever the process count,
so N processes with ``--batch B`` train exactly like one process with ``--batch N*B`` (gradients are
averaged by DDP; equal up to float rounding), and a run resumed from step ``k`` (with the same or another
number of processes, as long as the global batch is the same) continues exactly like an uninterrupted one.
Only the main process writes (checkpoints, logs, weights, previews, messages); every process reads a
checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import InpaintKitError
from ..images import atomic_write
from .checkpoint import (CHECKPOINTS, CONFIG_NAME, RUN_FILES, STATE_NAME, TMP_PREFIX, check_output_dir,
                         checkpoint_name, find_checkpoint, list_checkpoints, prepare_output_dir, read_state)
from .config import TrainerConfig

TRAINABLE_NAME = "trainable_{}.safetensors"  # checkpoint: trained parameters of trainable_modules()[i]


@dataclass
class TrainResult:
    """What a run did: where it wrote, how far it got, and its loss per update."""

    out: Path
    weights: Path
    step: int
    losses: list[float] = field(default_factory=list)
    nan_skips: int = 0
    trainable_params: int = 0
    seconds: float = 0.0


def seed_of(*parts: int) -> int:
    """A 63-bit seed derived from a tuple of ints (independent streams for independent draws)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


def trainable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters being trained, by their ``model.state_dict()`` names (detached, on CPU, contiguous)."""
    return {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _tb_value(v):
    return v if isinstance(v, (int, float, str, bool)) else str(v)


def _same(a, b) -> bool:
    """Equal as recorded in JSON (tuples and lists alike, ints and floats alike)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def unreadable_checkpoint(ckpt: Path, error: Exception) -> InpaintKitError:
    """A one-line error naming the checkpoint file that cannot be loaded and why (found by probing the
    files ``accelerate.load_state`` reads, in its order)."""
    from accelerate.utils import load
    from safetensors import safe_open

    names = sorted(p.name for p in ckpt.glob("*.safetensors")) + ["optimizer.bin", "scheduler.bin"]
    names += ["scaler.pt"] if (ckpt / "scaler.pt").exists() else []
    for name in names:
        path = ckpt / name
        if not path.is_file():
            return InpaintKitError(f"--resume {ckpt}: {name} is missing; the checkpoint is incomplete, resume an "
                                   "older one")
        try:
            if name.endswith(".safetensors"):
                with safe_open(str(path), framework="pt") as f:
                    for k in f.keys():
                        f.get_tensor(k)
            else:
                load(str(path), map_location="cpu")
        except Exception as e:  # noqa: BLE001 - torch/safetensors raise many types for one cause: a bad file
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "weights_only" in str(e) or "Unsupported global" in str(e):
                reason = "torch.load(weights_only=True) refuses it (it holds pickled objects, not only tensors)"
            return InpaintKitError(f"--resume {path}: cannot be loaded ({reason[:200]}); the checkpoint is damaged "
                                   "or not from inpaint-kit: resume an older one or start a new run")
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InpaintKitError(f"--resume {ckpt}: cannot be loaded ({first[:200]})")


class Trainer:
    """One training run: ``Trainer(cfg).run()``. Subclass it (see the module docstring for the hooks)."""

    name = "train"
    weights_names: tuple[str, ...] = ()

    def __init__(self, cfg: TrainerConfig):
        self.cfg = cfg.validate()
        self.out = Path(cfg.output_dir)
        self.step, self.nan_skips, self.losses = 0, 0, []
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.validate_every and type(self).validate is Trainer.validate:
            raise InpaintKitError(f"--validate_every: {self.name} has no validation preview; leave it out")
        if cfg.device is not None:
            from ..engine import check_device

            check_device(cfg.device)
        self.acc = self._accelerator()
        self.resume_from = find_checkpoint(cfg.resume, self.out) if cfg.resume else None
        self.saved = read_state(self.resume_from) if self.resume_from is not None else None
        if self.saved is not None:
            self.check_config(self.saved)
        check_output_dir(self.out, RUN_FILES + tuple(self.weights_names), self.resume_from, cfg.overwrite)
        if self.acc.is_main_process:
            prepare_output_dir(self.out, RUN_FILES + tuple(self.weights_names), cfg.overwrite)
        self.acc.wait_for_everyone()
        self.build_data()
        self.build_models()
        self.fingerprint = self.model_fingerprint()
        if self.saved is not None:
            self.check_fingerprint(self.saved)
        self._build_optimizer()

    # --- hooks (see the module docstring) ----------------------------------------------------------
    def build_data(self) -> None:
        """Find and check the training data (runs before any model loads)."""

    def build_models(self) -> None:
        """Build or load the models, freeze what does not train, move them to ``self.acc.device``."""
        raise NotImplementedError

    def trainable_modules(self) -> list[torch.nn.Module]:
        """The modules holding trainable parameters; ``self.models`` holds them prepared, in this order."""
        raise NotImplementedError

    def micro_loss(self, micro: int) -> torch.Tensor:
        """The scalar loss of micro-batch ``micro`` (= update * accum + k) on this process."""
        raise NotImplementedError

    def save_weights(self) -> Path:
        """Write the trained weights in their inference format into ``self.out`` (main process)."""
        raise NotImplementedError

    def weights_path(self) -> Path:
        """The final weights file reported by :class:`TrainResult`."""
        return self.out / self.weights_names[0]

    def model_fingerprint(self) -> dict:
        """Identity of the base model / network, recorded in checkpoints; resume refuses another one."""
        return {}

    def after_update(self) -> None:
        """Called after every update (e.g. to step an EMA)."""

    def save_extra(self, folder: Path) -> None:
        """Write more state into a checkpoint folder (main process; safetensors or JSON, never pickles)."""

    def load_extra(self, folder: Path, state: dict) -> None:
        """Read what :meth:`save_extra` wrote (every process)."""

    def validate(self) -> Path:
        """Write a preview with the current weights (main process); enables ``--validate_every``."""
        raise NotImplementedError

    def record(self) -> dict:
        """Extra keys for ``training_config.json``."""
        return {}

    def recipe(self) -> dict:
        """The settings that made the model, for the provenance a trainer saves in its ``config.json``:
        the config without where and how this process ran (folders, resume, device, threads, progress)."""
        skip = ("output_dir", "resume", "overwrite", "stop_after", "device", "threads", "progress")
        return {k: v for k, v in self.cfg.to_dict().items() if k not in skip}

    def summary(self, result: TrainResult) -> str:
        """The run's closing line (printed once, by the main process, at the end of :meth:`run`)."""
        return (f"trained {result.step} steps ({result.trainable_params:,} trainable parameters); "
                f"weights: {result.weights}")

    # --- shared services --------------------------------------------------------------------------------
    def print(self, *args, **kwargs) -> None:
        """``print`` on the main process only (under torchrun every process runs the same code)."""
        if self.acc.is_main_process:
            print(*args, **kwargs)

    def place(self, frozen=(), trained=()) -> None:
        """Put the models on ``self.acc.device``. ``frozen``: modules whose frozen weights (and buffers) take
        ``self.weight_dtype`` under mixed precision (bf16/fp16: half the memory, and the maths runs in that
        dtype under autocast anyway) while any trainable parameters inside them (e.g. LoRA adapters) stay
        fp32, untouched; ``trained``: modules trained whole, kept fp32. The optimizer always steps fp32."""
        for m in trained:
            m.to(self.acc.device)
        for m in frozen:
            m.to(self.acc.device)
            if self.weight_dtype != torch.float32:
                keep = [(p, p.data) for p in m.parameters() if p.requires_grad]
                m.to(dtype=self.weight_dtype)
                for p, data in keep:
                    p.data = data

    def save_preview(self, image: np.ndarray, meta: dict) -> Path:
        """Write a validation preview (RGB uint8) as ``validation/step_NNNNNN.png`` with ``meta`` and the
        step in its metadata, and log it to TensorBoard (main process)."""
        from ..images import save_png

        path = save_png(self.out / "validation" / f"step_{self.step:06d}.png", image, {"step": self.step, **meta})
        tracker = self.acc.get_tracker("tensorboard")
        if hasattr(tracker, "log_images"):
            tracker.log_images({"validation": image[None]}, step=self.step, dataformats="NHWC")
        return path

    # --- randomness ----------------------------------------------------------------------------------
    def draws(self, micro: int) -> list[int]:
        """Global numbers of this process's samples in micro-batch ``micro``: process ``p`` of ``P`` takes
        ``[(micro * P + p) * batch, ... + batch)``, so the numbers do not depend on how work is split."""
        p, n, b = self.acc.process_index, self.acc.num_processes, self.cfg.batch
        return [(micro * n + p) * b + i for i in range(b)]

    def generators(self, draws: list[int], stream: int = 0) -> list[torch.Generator]:
        """One CPU generator per sample, seeded by ``(seed, stream, draw)`` (use another ``stream`` for
        another kind of sample, e.g. prior-preservation images)."""
        return [torch.Generator("cpu").manual_seed(seed_of(self.cfg.seed, stream, d)) for d in draws]

    # --- build ---------------------------------------------------------------------------------------
    def _accelerator(self):
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState, GradientState
        from accelerate.utils import DistributedType, ProjectConfiguration

        cfg = self.cfg
        # The accelerate state is a per-process singleton; a second run in one Python process (tests, notebooks)
        # may ask for another precision, so start it afresh (the distributed PartialState is kept).
        AcceleratorState._reset_state()
        GradientState._reset_state()
        acc = Accelerator(
            mixed_precision=cfg.mixed_precision,
            log_with="tensorboard",
            project_config=ProjectConfiguration(project_dir=str(self.out), logging_dir=str(self.out / "logs")),
            cpu=cfg.device == "cpu",
            # One scheduler step per update whatever the process count, so that the schedule (and a resume
            # with another number of processes) does not depend on it.
            step_scheduler_with_optimizer=False,
        )
        if acc.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP, DistributedType.MEGATRON_LM):
            raise InpaintKitError(f"accelerate {acc.distributed_type.value}: inpaint-kit trainers run data-parallel "
                                  "only; launch with torchrun or plain accelerate launch --multi_gpu")
        if cfg.mixed_precision == "fp16" and acc.device.type == "cpu":
            raise InpaintKitError("--mixed_precision fp16 needs a GPU (CPU autocast is bf16 only); use bf16 or no")
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(acc.mixed_precision, torch.float32)
        from accelerate.utils import is_tensorboard_available

        if not is_tensorboard_available() and acc.is_main_process:
            print(f"note: no TensorBoard logs in {self.out / 'logs'} (pip install tensorboard to get them)")
        return acc

    def _build_optimizer(self):
        from diffusers.optimization import get_scheduler

        cfg, acc = self.cfg, self.acc
        modules = self.trainable_modules()
        self.params = [p for m in modules for p in m.parameters() if p.requires_grad]
        self.trainable_params = sum(p.numel() for p in self.params)
        optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.warmup_steps,
                                  num_training_steps=cfg.steps)
        prepared = acc.prepare(*modules, optimizer, scheduler)
        self.models = list(prepared[: len(modules)])
        self.optimizer, self.lr_scheduler = prepared[len(modules):]
        acc.register_save_state_pre_hook(self._save_hook)
        acc.register_load_state_pre_hook(self._load_hook)

    # --- checkpoints ----------------------------------------------------------------------------------
    def _save_hook(self, models, weights, output_dir):
        """Checkpoint only the trained parameters of each model (not a whole frozen UNet)."""
        from safetensors.torch import save_file

        for i, model in enumerate(models):
            save_file(trainable_state_dict(self.acc.unwrap_model(model)), os.path.join(output_dir, TRAINABLE_NAME.format(i)))
        weights.clear()

    def _load_hook(self, models, input_dir):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        for i, model in enumerate(list(models)):
            model = self.acc.unwrap_model(model)
            path = Path(input_dir) / TRAINABLE_NAME.format(i)
            if not path.is_file():
                raise InpaintKitError(f"--resume {input_dir}: {path.name} is missing; the checkpoint is incomplete")
            try:
                state = load_file(str(path))
            except (SafetensorError, OSError) as e:
                raise InpaintKitError(f"--resume {path}: not a readable safetensors file ({e}); the checkpoint is "
                                      "damaged, resume an older one")
            expected = trainable_state_dict(model)
            if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in state):
                other = sorted(set(state) ^ set(expected)) or [k for k in state if state[k].shape != expected[k].shape]
                raise InpaintKitError(f"--resume {path}: holds other weights than this run trains (first difference: "
                                      f"{other[0]}); it belongs to another network or settings")
            with torch.no_grad():
                params = dict(model.named_parameters())
                for k, v in state.items():
                    params[k].copy_(v)
        models.clear()

    def trainer_state(self) -> dict:
        """The checkpoint's identity card (``trainer_state.json``)."""
        return {"trainer": self.name, "step": self.step, "nan_skips": self.nan_skips, "config": self.cfg.to_dict(),
                "base": self.fingerprint, "processes": self.acc.num_processes,
                "global_batch": self.cfg.batch * self.acc.num_processes, "inpaint_kit": __version__}

    def save_checkpoint(self, barrier: bool = True) -> Path:
        """Write ``checkpoints/step_NNNNNN`` atomically (temp folder + rename) from the main process, then the
        weights and ``training_config.json``; keep the newest ``checkpoints_total_limit``. ``barrier=False``
        (Ctrl-C) does not wait for the other processes, which may be gone."""
        acc, root = self.acc, self.out / CHECKPOINTS
        final = root / checkpoint_name(self.step)
        if barrier:
            acc.wait_for_everyone()
        if acc.is_main_process:
            tmp = root / (TMP_PREFIX + checkpoint_name(self.step).removeprefix("step_"))
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            acc.save_state(str(tmp))
            self.save_extra(tmp)
            atomic_write(tmp / STATE_NAME, lambda p: Path(p).write_text(json.dumps(self.trainer_state(), indent=2)))
            if final.exists():  # re-saving the same step (e.g. Ctrl-C right after a scheduled save)
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in list_checkpoints(self.out)[: -self.cfg.checkpoints_total_limit]:
                shutil.rmtree(old, ignore_errors=True)
            self.save_outputs()
        if barrier:
            acc.wait_for_everyone()
        return final

    def save_outputs(self) -> Path:
        """The final weights (:meth:`save_weights`) and ``training_config.json`` (main process)."""
        path = self.save_weights()
        record = {"trainer": self.name, "config": self.cfg.to_dict(), "base": self.fingerprint,
                  "weights": path.name, "step": self.step, "steps": self.cfg.steps, "nan_skips": self.nan_skips,
                  "trainable_params": self.trainable_params, "last_loss": self.losses[-1] if self.losses else None,
                  "processes": self.acc.num_processes, "global_batch": self.cfg.batch * self.acc.num_processes,
                  "inpaint_kit": __version__, **self.record()}
        atomic_write(self.out / CONFIG_NAME, lambda p: Path(p).write_text(json.dumps(record, indent=2)))
        return path

    def check_config(self, state: dict) -> None:
        """Refuse a checkpoint of another trainer, or one whose run-defining settings differ from this run's
        (one line naming them); report settings that may change and did."""
        ckpt = self.resume_from
        if state.get("trainer") != self.name:
            raise InpaintKitError(f"--resume {ckpt}: written by {state.get('trainer') or 'another program'}, not "
                                  f"{self.name}; resume it with that command or start a new run")
        saved, fixed, changed = state["config"], [], []
        for f in dataclasses.fields(self.cfg):
            kind = f.metadata.get("resume", "fixed")
            if kind == "fresh" or f.name == "batch" or f.name not in saved:
                continue
            now = getattr(self.cfg, f.name)
            if not _same(now, saved[f.name]):
                (fixed if kind == "fixed" else changed).append((f.name, saved[f.name], now))
        if fixed:
            text = self.cfg.flag_text
            was = ", ".join(f"{text(n, old)} (not {text(n, new).split(' ', 1)[1]})" for n, old, new in fixed)
            raise InpaintKitError(f"--resume {ckpt}: the run was trained with {was}; leave these flags out (resume "
                                  "uses the run's settings) or start a new --output_dir")
        global_batch = self.cfg.batch * self.acc.num_processes
        if global_batch != state.get("global_batch"):
            n = self.acc.num_processes
            hint = (f"pass --batch {state['global_batch'] // n}" if state.get("global_batch", 0) % n == 0
                    else f"use a number of processes that divides {state.get('global_batch')}")
            raise InpaintKitError(f"--resume {ckpt}: the run's global batch is {state.get('global_batch')} "
                                  f"({state.get('processes')} process(es) x --batch {saved.get('batch')}), this one "
                                  f"{global_batch} ({n} x --batch {self.cfg.batch}); {hint}")
        if changed:
            text = self.cfg.flag_text
            self.print("resume: " + ", ".join(f"{text(n, new)} (was {text(n, old).split(' ', 1)[1]})"
                                              for n, old, new in changed))

    def check_fingerprint(self, state: dict) -> None:
        """Refuse a checkpoint made from another base model or network."""
        was, now = state.get("base") or {}, self.fingerprint
        if _same(was, now):
            return
        if was.get("model") != now.get("model"):
            raise InpaintKitError(f"--resume {self.resume_from}: it was trained from base model {was.get('model')}, not "
                                  f"{now.get('model')}; pass the same --model or start a new --output_dir")
        key = next(k for k in sorted(set(was) | set(now)) if not _same(was.get(k), now.get(k)))
        raise InpaintKitError(f"--resume {self.resume_from}: it was trained on another network ({key}: {was.get(key)} "
                              f"vs {now.get(key)}); start a new --output_dir")

    def resume(self, ckpt: Path) -> None:
        """Restore weights, optimizer, LR scheduler, extra state and step count from ``ckpt``."""
        try:
            self.acc.load_state(str(ckpt))
        except InpaintKitError:
            raise
        except Exception as e:  # noqa: BLE001 - pickle, zip, safetensors, size-mismatch errors: one line each
            raise unreadable_checkpoint(ckpt, e) from None
        self.load_extra(ckpt, self.saved)
        self.step, self.nan_skips = int(self.saved["step"]), int(self.saved.get("nan_skips", 0))
        # The optimizer comes back with the learning rate of the old schedule; when --steps changed on
        # resume, the new schedule must decide the rate from here on.
        sched = getattr(self.lr_scheduler, "scheduler", self.lr_scheduler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # get_lr() outside step() warns; the closed form is what we want
            for group, lr in zip(self.optimizer.param_groups, sched.get_lr()):
                group["lr"] = lr
        sched._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    # --- step -----------------------------------------------------------------------------------------
    def train_step(self) -> float:
        """One update: ``accum`` micro-batches, then an optimizer step unless a loss or gradient is NaN/inf
        (then the update is skipped and counted). Returns the mean micro-batch loss of this process."""
        cfg, acc = self.cfg, self.acc
        for m in self.models:
            m.train()
        total = 0.0
        for k in range(cfg.accum):
            micro = self.step * cfg.accum + k
            with contextlib.ExitStack() as stack:
                if k < cfg.accum - 1:  # gradients are only all-reduced on the last micro-batch
                    for m in self.models:
                        stack.enter_context(acc.no_sync(m))
                with acc.autocast():
                    loss = self.micro_loss(micro)
                acc.backward(loss / cfg.accum)
            total += float(loss.detach()) / cfg.accum
        # Gradients are synced now, so every process takes the same decision. The loss is this process's, so
        # a NaN there (with finite gradients elsewhere) shows in the synced gradients too.
        if acc.scaler is not None:
            # fp16: the grad scaler already skips a step with inf/NaN gradients and lowers its scale;
            # it must see them, or the scale would never come down.
            acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
            self.optimizer.step()
            self.nan_skips += int(self.optimizer.step_was_skipped)
        elif all(torch.isfinite(p.grad).all() for p in self.params if p.grad is not None) and self._finite(total):
            acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
            self.optimizer.step()
        else:
            self.nan_skips += 1
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.after_update()
        return total

    def _finite(self, loss: float) -> bool:
        """True when the loss is finite on every process (one all-reduce when there are several)."""
        if self.acc.num_processes == 1:
            return math.isfinite(loss)
        flag = torch.tensor([0.0 if math.isfinite(loss) else 1.0], device=self.acc.device)
        return float(self.acc.reduce(flag, reduction="sum")) == 0.0

    # --- run ------------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train to ``--steps`` (or ``--stop_after``) updates, checkpointing, validating and logging; Ctrl-C
        checkpoints first."""
        from tqdm.auto import tqdm

        cfg, acc = self.cfg, self.acc
        if self.resume_from is not None:
            self.resume(self.resume_from)
        acc.init_trackers(self.name.replace("-", "_"), config={k: _tb_value(v) for k, v in cfg.to_dict().items()})
        end = min(cfg.steps, cfg.stop_after or cfg.steps)
        start, t0 = self.step, time.perf_counter()
        from ..progress import interactive

        # a bar on a terminal; in a log file the --log_every lines are the progress
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.name, dynamic_ncols=True,
                   disable=not (cfg.progress and acc.is_main_process and interactive()))
        last_saved = self.step if self.resume_from is not None else -1
        try:
            while self.step < end:
                loss = self.train_step()
                self.losses.append(loss)
                lr = self.lr_scheduler.get_last_lr()[0]
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", nan_skips=self.nan_skips)
                acc.log({"loss": loss, "lr": lr, "nan_skips": self.nan_skips}, step=self.step)
                if cfg.log_every and self.step % cfg.log_every == 0 and acc.is_main_process:
                    bar.write(f"step {self.step} loss {loss:.5f} lr {lr:.2e} "
                              f"{(time.perf_counter() - t0) / (self.step - start):.2f} s/step")
                if self.step % cfg.save_every == 0 or self.step == end:
                    self.save_checkpoint()
                    last_saved = self.step
                if cfg.validate_every and self.step % cfg.validate_every == 0 and acc.is_main_process:
                    self.validate()
        except KeyboardInterrupt:
            if self.step != last_saved and acc.is_main_process:
                bar.write(f"interrupted at step {self.step}: saving a checkpoint")
                self.save_checkpoint(barrier=False)
            raise
        finally:
            bar.close()
            # Not acc.end_training(): it also destroys the process group, which belongs to the process
            # (accelerate's PartialState), so a second run in the same process (a notebook, a script that
            # trains then resumes) would find no group under torchrun. Finishing the trackers is the rest.
            for tracker in acc.trackers:
                tracker.finish()
        if self.step == start and self.step != last_saved:  # nothing to do (already at --steps)
            self.save_checkpoint()
        result = TrainResult(self.out, self.weights_path(), self.step, self.losses, self.nan_skips,
                             self.trainable_params, time.perf_counter() - t0)
        if self.nan_skips:
            self.print(f"warning: {self.nan_skips} update(s) skipped because the loss or a gradient was NaN/inf")
        self.print(self.summary(result))
        return result
