"""The training objective: damage-aware / mask weights, the weighted MSE, and the prediction target."""

import pytest
import torch

from inpaint_kit.errors import InpaintKitError
from inpaint_kit.train.objective import (
    latent_damage,
    latent_mask,
    loss_weights,
    prediction_target,
    unet_input,
    weighted_mse,
)


def test_damage_pixels_get_zero_weight_and_zero_loss():
    damage = torch.zeros(1, 1, 32, 32)
    damage[0, 0, 3, 20] = 1.0  # one damaged image pixel -> latent pixel (0, 2)
    damage[0, 0, 16:24, 0:8] = 1.0  # a whole 8x8 cell -> latent pixel (2, 0)
    d_lat = latent_damage(damage)
    assert d_lat.shape == (1, 1, 4, 4)
    assert d_lat[0, 0].nonzero().tolist() == [[0, 2], [2, 0]]

    mask_lat = torch.ones(1, 1, 4, 4)  # damage wins even inside the hole
    w = loss_weights(mask_lat, d_lat, mask_loss_weight=3.0)
    assert w[0, 0, 0, 2] == 0 and w[0, 0, 2, 0] == 0
    assert torch.all(w[d_lat == 0] == 3.0)

    pred, target = torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4)
    base = weighted_mse(pred, target, w)
    # Any error on the damaged latent pixels changes nothing; an error elsewhere does.
    pred[:, :, 0, 2] = 100.0
    pred[:, :, 2, 0] = -7.0
    assert weighted_mse(pred, target, w).item() == base.item() == 0.0
    pred[:, :, 1, 1] = 1.0
    assert weighted_mse(pred, target, w).item() == pytest.approx(3.0 * 4 / (14 * 3.0 * 4))


def test_mask_weight_and_all_zero_weights():
    mask_lat = torch.zeros(2, 1, 2, 2)
    mask_lat[:, :, 0, 0] = 1
    w = loss_weights(mask_lat, None, mask_loss_weight=5.0)
    assert w[0, 0].tolist() == [[5.0, 1.0], [1.0, 1.0]]
    assert torch.all(loss_weights(mask_lat, None, 1.0) == 1)  # default: plain MSE
    err = torch.ones(2, 4, 2, 2)
    zero = torch.zeros(2, 1, 2, 2)
    assert weighted_mse(err, torch.zeros_like(err), zero).tolist() == [0.0, 0.0]  # fully damaged sample adds nothing
    assert weighted_mse(err * 2, torch.zeros_like(err), torch.ones(2, 1, 2, 2)).tolist() == [4.0, 4.0]


def test_latent_mask_repaints_every_cell_touched_and_unet_input_has_9_channels():
    mask = torch.zeros(1, 1, 16, 24)
    mask[..., :8, :] = 1
    m = latent_mask(mask)
    assert m.shape == (1, 1, 2, 3) and m[0, 0].tolist() == [[1, 1, 1], [0, 0, 0]]
    crack = torch.zeros(1, 1, 16, 24)
    crack[..., 9, 17:23] = 1  # one pixel high, inside cell (1, 2) only: nearest neighbour would drop it
    assert latent_mask(crack)[0, 0].tolist() == [[0, 0, 0], [0, 0, 1]]
    x = unet_input(torch.zeros(1, 4, 2, 3), m, torch.ones(1, 4, 2, 3))
    assert x.shape == (1, 9, 2, 3)
    assert torch.equal(x[:, 4:5], m) and torch.all(x[:, 5:] == 1)


def test_prediction_target_epsilon_and_v():
    from diffusers import DDPMScheduler

    latents, noise = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    t = torch.tensor([10, 900])
    eps = DDPMScheduler(prediction_type="epsilon")
    assert torch.equal(prediction_target(eps, latents, noise, t), noise)
    v = DDPMScheduler(prediction_type="v_prediction")
    a = v.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1)
    s = (1 - v.alphas_cumprod[t]).sqrt().view(-1, 1, 1, 1)
    assert torch.allclose(prediction_target(v, latents, noise, t), a * noise - s * latents, atol=1e-6)
    with pytest.raises(InpaintKitError, match="sample"):
        prediction_target(DDPMScheduler(prediction_type="sample"), latents, noise, t)
