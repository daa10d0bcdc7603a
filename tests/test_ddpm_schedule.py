"""Diffusion math and samplers: pure functions checked against formulas and worked examples."""

import math

import pytest
import torch

from inpaint_kit.ddpm.sampling import get_sampler
from inpaint_kit.ddpm.schedule import (
    add_noise,
    cosine_betas,
    denoise_step,
    linear_betas,
    make_schedule,
    renoise,
    repaint_jumps,
    spaced_timesteps,
    step,
)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_alpha_bars_strictly_decrease_from_one_to_near_zero(kind):
    s = make_schedule(kind, 1000)
    ab = s.alpha_bars
    assert ab.shape == (1000,)
    assert torch.all(ab[1:] < ab[:-1])
    assert 0.999 < ab[0] < 1 and ab[-1] < 1e-4
    assert torch.allclose(s.alphas, 1 - s.betas) and float(s.ab(-1)) == 1.0


def test_beta_values():
    b = linear_betas(1000)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)
    c = cosine_betas(1000)
    # alpha_bar(t) = f(t+1)/f(0) with f = cos^2(((t/T)+s)/(1+s) pi/2)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert torch.cumprod(1 - c, 0)[499].item() == pytest.approx(f(500) / f(0), rel=1e-9)


def test_add_noise_formula_and_clean_end():
    s = make_schedule("cosine", 100)
    x0, noise = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.equal(add_noise(s, x0, -1, noise), x0)
    t = torch.tensor([0, 60])
    out = add_noise(s, x0, t, noise)
    ab = s.alpha_bars[60].item()
    assert torch.allclose(out[1], math.sqrt(ab) * x0[1] + math.sqrt(1 - ab) * noise[1], atol=1e-6)
    assert (out[0] - x0[0]).abs().mean() < 0.05  # t = 0 is almost clean


def test_renoise_matches_marginal():
    s = make_schedule("linear", 100)
    x0, n1, n2 = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    x10 = add_noise(s, x0, 10, n1)
    x50 = renoise(s, x10, 10, 50, n2)
    # x50 = sqrt(ab50) x0 + N(0, 1 - ab50): check the residual's variance
    resid = x50 - math.sqrt(s.alpha_bars[50].item()) * x0
    assert resid.var().item() == pytest.approx(1 - s.alpha_bars[50].item(), rel=0.05)


def test_spaced_timesteps():
    assert spaced_timesteps(1000, 4) == [999, 666, 333, 0]
    assert spaced_timesteps(10, 10) == list(range(9, -1, -1))
    with pytest.raises(ValueError):
        spaced_timesteps(10, 11)


def test_repaint_jump_schedule_worked_example():
    # steps 6, jump every 2 indices back up 2, once (jump_n_sample 2): traced by hand.
    assert repaint_jumps(6, 2, 2) == [5, 4, 3, 2, 3, 4, 3, 2, 1, 0, 1, 2, 1, 0, -1]
    assert repaint_jumps(4, 10, 10) == [3, 2, 1, 0, -1]  # jump longer than the chain: no jumps
    assert repaint_jumps(5, 1, 1) == [4, 3, 2, 1, 0, -1]
    seq = repaint_jumps(20, 5, 3)
    downs = sum(b < a for a, b in zip(seq, seq[1:]))
    ups = sum(b > a for a, b in zip(seq, seq[1:]))
    assert all(abs(b - a) == 1 for a, b in zip(seq, seq[1:]))
    assert ups == 3 * 2 * 5 and downs == 20 + ups  # jumps at 0, 5, 10, twice each, 5 up each


def test_ddpm_step_equals_posterior_mean_without_noise():
    s = make_schedule("linear", 1000)
    xt, eps = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4) * 0.1
    t = 500
    x_prev, x0 = step(s, xt, t, t - 1, eps, eta=1.0, noise=torch.zeros_like(xt))
    ab_t, ab_p, beta = s.alpha_bars[t].item(), s.alpha_bars[t - 1].item(), s.betas[t].item()
    mu = math.sqrt(ab_p) * beta / (1 - ab_t) * x0 + math.sqrt(1 - beta) * (1 - ab_p) / (1 - ab_t) * xt
    assert torch.allclose(x_prev, mu, atol=1e-5)


def test_denoise_step_keeps_known_pixels():
    s = make_schedule("cosine", 50)
    known = torch.rand(2, 3, 8, 8) * 2 - 1
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., 2:5, 3:6] = 1
    eps_fn = lambda x, t: torch.randn_like(x)  # noqa: E731 - any prediction
    xt = torch.randn(2, 3, 8, 8)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    out = denoise_step(eps_fn, s, xt, 0, known, mask, generators=gens)  # last step: x0 with known exact
    assert torch.equal(out[mask.expand_as(out) == 0], known[mask.expand_as(known) == 0])
    assert not torch.allclose(out[..., 2:5, 3:6], known[..., 2:5, 3:6])
    # an intermediate step re-injects the known region noised to t_prev, i.e. not the clean image
    mid = denoise_step(eps_fn, s, xt, 30, known, mask, t_prev=20, generators=gens)
    assert not torch.allclose(mid[..., :2, :], known[..., :2, :], atol=1e-3)


@pytest.mark.parametrize("name", ["ddim", "ddpm", "repaint"])
def test_samplers_keep_known_and_rows_are_independent(name):
    s = make_schedule("cosine", 40)
    known = torch.rand(3, 3, 8, 8) * 2 - 1
    mask = torch.zeros(3, 1, 8, 8)
    mask[..., :, 4:] = 1
    eps_fn = lambda x, t: 0.5 * x  # noqa: E731 - deterministic stand-in for the network
    sampler = get_sampler(name, jump_length=2, jump_n_sample=2)
    calls = []
    out = sampler(eps_fn, s, known, mask, 6, [torch.Generator().manual_seed(k) for k in (7, 8, 9)],
                  lambda i, n, x: calls.append((i, n)))
    assert torch.equal(out[..., :4], known[..., :4])
    assert out.abs().max() <= 1.0
    alone = sampler(eps_fn, s, known[1:2], mask[1:2], 6, [torch.Generator().manual_seed(8)])
    assert torch.allclose(alone, out[1:2], atol=1e-6)
    assert calls[-1][0] + 1 == calls[-1][1] == (6 if name != "repaint" else 10)


@pytest.mark.parametrize("name", ["ddim", "ddpm", "repaint"])
def test_samplers_recover_x0_exactly_with_an_oracle_network(name):
    """A network that knows the true noise must lead every sampler back to the true image."""
    s = make_schedule("cosine", 1000)
    x0 = torch.rand(2, 3, 8, 8) * 1.6 - 0.8
    known, mask = torch.zeros_like(x0), torch.ones(2, 1, 8, 8)

    def oracle(xt, t):
        ab = float(s.ab(t))
        return (xt - math.sqrt(ab) * x0) / math.sqrt(1 - ab)

    out = get_sampler(name, 3, 2)(oracle, s, known, mask, 12, [torch.Generator().manual_seed(i) for i in range(2)])
    assert torch.allclose(out, x0, atol=1e-5)


def test_v_prediction_converts_to_the_true_noise():
    from inpaint_kit.ddpm.schedule import to_eps, v_target

    s = make_schedule("cosine", 1000)
    x0, noise = torch.rand(1, 3, 4, 4) * 2 - 1, torch.randn(1, 3, 4, 4)
    for t in (0, 500, 999):
        xt = add_noise(s, x0, t, noise)
        assert torch.allclose(to_eps(s, "v", xt, t, v_target(s, x0, t, noise)), noise, atol=1e-4)
        assert torch.equal(to_eps(s, "epsilon", xt, t, noise), noise)
    # where it matters: x0 recovered from a v estimate with a small error stays close at t = T-1
    xt = add_noise(s, x0, 999, noise)
    v = v_target(s, x0, 999, noise) + 0.01
    _, x0_hat = step(s, xt, 999, 998, to_eps(s, "v", xt, 999, v), eta=0.0, noise=None)
    assert (x0_hat - x0).abs().max() < 0.02
