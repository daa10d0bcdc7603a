"""Diffusion math as pure tensor functions (Ho et al. 2020, DDPM; Song et al. 2021, DDIM; Lugmayr et
al. 2022, RePaint). The network is never owned here: samplers receive ``eps_fn(x_t, t) -> eps``.

Notation: ``alpha_bars[t] = prod_{s<=t} (1 - betas[s])``; ``x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps``.
Images are (B, 3, H, W) in [-1, 1]; masks (B, 1, H, W) float with 1 = repaint (soft edges allowed).
Timestep ``-1`` means "clean": a step to ``t_prev = -1`` returns the predicted x0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

SCHEDULES = ("linear", "cosine")


def linear_betas(num_timesteps: int = 1000, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """DDPM's linear beta schedule (Ho et al. 2020), scaled so that any ``num_timesteps`` ends as noisy."""
    scale = 1000 / num_timesteps
    return torch.linspace(start * scale, end * scale, num_timesteps, dtype=torch.float64)


def cosine_betas(num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021 cosine schedule: alpha_bar(t) = cos^2((t/T + s)/(1 + s) * pi/2)."""

    def f(t: float) -> float:
        return math.cos((t / num_timesteps + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(num_timesteps)]
    return torch.tensor(betas, dtype=torch.float64)


@dataclass(frozen=True)
class Schedule:
    """betas, alphas and alpha_bars (float64, length T)."""

    betas: torch.Tensor

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bars(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)

    @property
    def num_timesteps(self) -> int:
        return len(self.betas)

    def ab(self, t: int | torch.Tensor) -> torch.Tensor:
        """alpha_bar at integer timestep(s) ``t``; ``t = -1`` gives 1 (clean)."""
        t = torch.as_tensor(t)
        ab = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars])
        return ab[t + 1]


def make_schedule(kind: str = "cosine", num_timesteps: int = 1000) -> Schedule:
    """Build a schedule by name (``linear`` or ``cosine``)."""
    if kind == "linear":
        return Schedule(linear_betas(num_timesteps))
    if kind == "cosine":
        return Schedule(cosine_betas(num_timesteps))
    raise ValueError(f"unknown schedule {kind!r}; choose from {', '.join(SCHEDULES)}")


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-row scalar(s) -> (B, 1, 1, 1) in ``like``'s dtype/device."""
    v = v.to(like.device, torch.float64).reshape(-1, *([1] * (like.dim() - 1)))
    return v.to(like.dtype)


def add_noise(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
    """q(x_t | x0) = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise; ``t`` per row or one int (t = -1 returns x0)."""
    ab = _bcast(schedule.ab(torch.as_tensor(t)), x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


PREDICTIONS = ("epsilon", "v")


def v_target(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
    """v = sqrt(ab_t) noise - sqrt(1 - ab_t) x0 (Salimans & Ho 2022): the target of a ``v`` network."""
    ab = _bcast(schedule.ab(torch.as_tensor(t)), x0)
    return ab.sqrt() * noise - (1 - ab).sqrt() * x0


def to_eps(schedule: Schedule, prediction: str, xt: torch.Tensor, t: int, out: torch.Tensor) -> torch.Tensor:
    """The noise implied by a network output: ``epsilon`` as is, ``v`` as sqrt(1-ab) x_t + sqrt(ab) v.

    v-prediction keeps x0 = sqrt(ab) x_t - sqrt(1-ab) v well conditioned at high noise, where recovering
    x0 from an eps estimate divides its error by sqrt(ab_t) (about 5e-5 at the cosine schedule's end)."""
    if prediction == "epsilon":
        return out
    ab = float(schedule.ab(t))
    return math.sqrt(1 - ab) * xt + math.sqrt(ab) * out


def renoise(schedule: Schedule, x: torch.Tensor, t_from: int, t_to: int, noise: torch.Tensor) -> torch.Tensor:
    """q(x_{t_to} | x_{t_from}) for t_to > t_from: RePaint's jump back up the chain."""
    ratio = float(schedule.ab(t_to) / schedule.ab(t_from))
    return math.sqrt(ratio) * x + math.sqrt(1 - ratio) * noise


def randn_rows(shape: Sequence[int], generators: Sequence[torch.Generator] | None, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise of ``shape`` (B, ...); row b drawn from ``generators[b]`` so that a row is the
    same whether sampled alone or in a batch. ``None`` uses the global RNG."""
    if generators is None:
        return torch.randn(*shape, dtype=torch.float32).to(like.device, like.dtype)
    if len(generators) != shape[0]:
        raise ValueError(f"need one generator per row: {len(generators)} for {shape[0]} rows")
    rows = [torch.randn(*shape[1:], generator=g, dtype=torch.float32) for g in generators]
    return torch.stack(rows).to(like.device, like.dtype)


def step(schedule: Schedule, xt: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor, eta: float,
         noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One generalised DDIM step from ``t`` to ``t_prev < t`` given predicted noise (Song et al. 2021, eq. 12).

    ``eta = 1`` with ``t_prev = t - 1`` is exactly DDPM's ancestral step; ``eta = 0`` is deterministic DDIM.
    Returns ``(x_prev, x0_pred)``; x0 is clipped to [-1, 1] and eps recomputed from it."""
    ab_t, ab_prev = float(schedule.ab(t)), float(schedule.ab(t_prev))
    x0 = ((xt - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)).clamp(-1, 1)
    if t_prev < 0:
        return x0, x0
    eps = (xt - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))
    x_prev = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
    if sigma > 0:
        x_prev = x_prev + sigma * noise
    return x_prev, x0


def reinject(schedule: Schedule, x: torch.Tensor, known: torch.Tensor, mask: torch.Tensor, t: int,
             noise: torch.Tensor) -> torch.Tensor:
    """Replace the known region (mask 0) with the known image noised to level ``t`` (clean at t = -1)."""
    known_t = known if t < 0 else add_noise(schedule, known, t, noise)
    return mask * x + (1 - mask) * known_t


EpsFn = Callable[[torch.Tensor, int], torch.Tensor]


def denoise_step(eps_fn: EpsFn, schedule: Schedule, xt: torch.Tensor, t: int, known: torch.Tensor,
                 mask: torch.Tensor, t_prev: int | None = None, eta: float = 1.0,
                 generators: Sequence[torch.Generator] | None = None,
                 known_noise: torch.Tensor | None = None) -> torch.Tensor:
    """Predict noise at ``t``, step to ``t_prev`` (default ``t - 1``) and re-inject the known region
    noised to ``t_prev`` (with fresh noise, or ``known_noise`` if given: a deterministic DDIM chain keeps
    one noise image for the whole canvas). At ``t_prev = -1`` it returns the predicted x0 with the known
    pixels exact."""
    t_prev = t - 1 if t_prev is None else t_prev
    eps = eps_fn(xt, t)
    need_noise = eta > 0 and t_prev >= 0
    x_prev, _ = step(schedule, xt, t, t_prev, eps, eta, randn_rows(xt.shape, generators, xt) if need_noise else None)
    noise = None
    if t_prev >= 0:
        noise = known_noise if known_noise is not None else randn_rows(xt.shape, generators, xt)
    return reinject(schedule, x_prev, known, mask, t_prev, noise)


def spaced_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """``steps`` timesteps from T-1 down to 0, evenly spaced (both ends included)."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in 1..{num_timesteps}, got {steps}")
    if steps == 1:
        return [num_timesteps - 1]
    ts = np.round(np.linspace(num_timesteps - 1, 0, steps)).astype(int)
    return [int(t) for t in ts]


def repaint_jumps(steps: int, jump_length: int = 10, jump_n_sample: int = 10) -> list[int]:
    """RePaint's resampling schedule (Lugmayr et al. 2022; as in diffusers' ``RePaintScheduler``) over
    step indices ``steps-1 .. 0``, ending with -1 (clean). Going down is a denoising step; going up by
    one index is a jump back (re-noising). Every ``jump_length`` indices the chain goes back up
    ``jump_length`` indices, ``jump_n_sample - 1`` times.

    Example: ``repaint_jumps(6, 2, 2) == [5, 4, 3, 2, 3, 4, 3, 2, 1, 0, 1, 2, 1, 0, -1]``."""
    if steps < 1 or jump_length < 1 or jump_n_sample < 1:
        raise ValueError("steps, jump_length and jump_n_sample must all be >= 1")
    jumps = {j: jump_n_sample - 1 for j in range(0, steps - jump_length, jump_length)}
    t, seq = steps, []
    while t >= 1:
        t -= 1
        seq.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                seq.append(t)
    return seq + [-1]
