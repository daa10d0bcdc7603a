"""The exponential moving average of a trained network's weights (diffusers' ``EMAModel``), which the
trainers of from-scratch networks export as the model (train-ddpm, train-thinfill, train-detect), and its
file in every checkpoint (``ema.safetensors``, by parameter name), checked on resume."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InpaintKitError

EMA_NAME = "ema.safetensors"  # checkpoint: the EMA weights, by parameter name


class Ema:
    """The EMA of ``net``'s parameters (same device and dtype as the network)."""

    def __init__(self, net: torch.nn.Module, decay: float):
        from diffusers.training_utils import EMAModel

        self.net = net
        self.model = EMAModel(net.parameters(), decay=decay)

    def step(self) -> None:
        """Fold the network's current weights into the average (after each optimiser update)."""
        self.model.step(self.net.parameters())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The network's state dict with the EMA weights in place of the trained ones (buffers, such as
        BatchNorm statistics, are the live network's)."""
        names = [n for n, _ in self.net.named_parameters()]
        sd = dict(self.net.state_dict())
        sd.update({n: s for n, s in zip(names, self.model.shadow_params)})
        return sd

    def save(self, folder: Path) -> None:
        """Write ``folder/ema.safetensors`` (with the update count and decay as metadata)."""
        from safetensors.torch import save_file

        names = [n for n, _ in self.net.named_parameters()]
        meta = {"optimization_step": str(self.model.optimization_step), "decay": str(self.model.decay)}
        save_file({n: s.detach().to("cpu").contiguous() for n, s in zip(names, self.model.shadow_params)},
                  str(Path(folder) / EMA_NAME), metadata=meta)

    def load(self, folder: Path, step: int) -> None:
        """Read ``folder/ema.safetensors`` back (``step``: the checkpoint's, if the file does not say); a
        missing, damaged or foreign file is a one-line error naming it."""
        from safetensors import safe_open

        path = Path(folder) / EMA_NAME
        if not path.is_file():
            raise InpaintKitError(f"--resume {path}: missing; the checkpoint is incomplete, resume an older one")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                loaded = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # noqa: BLE001 - safetensors raises several types for one cause: a bad file
            raise InpaintKitError(f"--resume {path}: not a readable safetensors file ({str(e)[:200]}); the "
                                  "checkpoint is damaged, resume an older one") from None
        params = dict(self.net.named_parameters())
        if set(loaded) != set(params) or any(loaded[k].shape != params[k].shape for k in loaded):
            raise InpaintKitError(f"--resume {path}: holds the EMA of another network; start a new --output_dir")
        with torch.no_grad():
            for shadow, name in zip(self.model.shadow_params, params):
                shadow.copy_(loaded[name].to(shadow.device, shadow.dtype))
        self.model.optimization_step = int(meta.get("optimization_step", step))
