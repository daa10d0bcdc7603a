"""Samplers: free functions with one shared signature, each filling the mask of ``known``.

``sampler(eps_fn, schedule, known, mask, steps, generators, callback) -> x0`` where ``eps_fn(x_t, t)``
returns the noise (conditioning already bound; a v-prediction network's output is converted first), ``known`` (B,3,H,W) in [-1,1], ``mask`` (B,1,H,W) float
1 = repaint, one ``torch.Generator`` per row, and ``callback(i, n, x)`` is called after every model
evaluation (progress bars, intermediates). Rows never share random numbers.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from .schedule import EpsFn, Schedule, add_noise, denoise_step, randn_rows, reinject, renoise, repaint_jumps, spaced_timesteps

SAMPLERS = ("ddim", "ddpm", "repaint")
Callback = Callable[[int, int, torch.Tensor], None] | None


def _start(schedule: Schedule, known, mask, generators, t_start: int, init=None, fixed: bool = False):
    """x_{t_start}: noise in the hole (``init`` noised to t_start if given), the known image noised outside.
    With ``fixed`` the same noise image serves both and is returned for re-injection at later steps."""
    noise = randn_rows(known.shape, generators, known)
    x = noise if init is None else add_noise(schedule, init, t_start, noise)
    outside = noise if fixed else randn_rows(known.shape, generators, known)
    return reinject(schedule, x, known, mask, t_start, outside), (noise if fixed else None)


def sample_strided(eps_fn: EpsFn, schedule: Schedule, known, mask, steps: int,
                   generators: Sequence[torch.Generator] | None = None, callback: Callback = None,
                   eta: float = 0.0, init: torch.Tensor | None = None, strength: float = 1.0) -> torch.Tensor:
    """DDIM (Song et al. 2021) over ``steps`` evenly spaced timesteps; eta=1 makes it strided DDPM.

    With ``init`` (a rough fill, same shape as ``known``) the chain starts from it noised to
    ``strength * T`` and runs ``strength * steps`` steps (SDEdit, Meng et al. 2022)."""
    if init is not None and strength < 1.0:
        top = max(1, round(strength * schedule.num_timesteps))
        ts = spaced_timesteps(schedule.num_timesteps, schedule.num_timesteps)[-top:]
        ts = [ts[i] for i in sorted({round(j) for j in np.linspace(0, top - 1, max(1, round(steps * strength)))})]
    else:
        ts, init = spaced_timesteps(schedule.num_timesteps, steps), None
    # A deterministic chain (eta = 0) keeps one noise image for the known region too, so that the whole
    # canvas follows one consistent DDIM trajectory; ancestral sampling draws fresh noise every step.
    x, known_noise = _start(schedule, known, mask, generators, ts[0], init, fixed=eta == 0)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        x = denoise_step(eps_fn, schedule, x, t, known, mask, t_prev=t_prev, eta=eta, generators=generators,
                         known_noise=known_noise)
        if callback:
            callback(i, len(ts), x)
    return x


def sample_ddim(eps_fn, schedule, known, mask, steps, generators=None, callback=None, **start):
    """DDIM, deterministic (eta = 0) after the initial noise: good results in 10-50 steps."""
    return sample_strided(eps_fn, schedule, known, mask, steps, generators, callback, eta=0.0, **start)


def sample_ddpm(eps_fn, schedule, known, mask, steps, generators=None, callback=None, **start):
    """Ancestral DDPM (Ho et al. 2020); ``steps = T`` is the full chain, fewer steps stride it."""
    return sample_strided(eps_fn, schedule, known, mask, steps, generators, callback, eta=1.0, **start)


def sample_repaint(eps_fn, schedule, known, mask, steps, generators=None, callback=None,
                   jump_length: int = 10, jump_n_sample: int = 10):
    """RePaint (Lugmayr et al. 2022): strided DDPM steps with jumps back up the chain so that the
    generated region harmonises with the re-injected known region."""
    ts = spaced_timesteps(schedule.num_timesteps, steps)[::-1]  # index i -> timestep ts[i], ascending
    seq = repaint_jumps(steps, jump_length, jump_n_sample)
    tt = lambda i: ts[i] if i >= 0 else -1  # noqa: E731
    x, _ = _start(schedule, known, mask, generators, tt(seq[0]))
    n_down = sum(1 for a, b in zip(seq, seq[1:]) if b < a)
    done = 0
    for cur, nxt in zip(seq, seq[1:]):
        if nxt < cur:
            x = denoise_step(eps_fn, schedule, x, tt(cur), known, mask, t_prev=tt(nxt), eta=1.0, generators=generators)
            if callback:
                callback(done, n_down, x)
            done += 1
        else:
            x = renoise(schedule, x, tt(cur), tt(nxt), randn_rows(x.shape, generators, x))
    return x


def get_sampler(name: str, jump_length: int = 10, jump_n_sample: int = 10):
    """The sampler function for ``name`` (``ddim``, ``ddpm``, ``repaint``)."""
    if name == "ddim":
        return sample_ddim
    if name == "ddpm":
        return sample_ddpm
    if name == "repaint":
        return lambda *a, **k: sample_repaint(*a, **k, jump_length=jump_length, jump_n_sample=jump_n_sample)
    raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
