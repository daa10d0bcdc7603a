"""Fine-tuning SD inpainting models: UNet attention LoRA (default), partial UNet training (``--train attn``),
an optional text-encoder LoRA, and DreamBooth prior preservation.

``config`` (the one dataclass) -> ``data`` (pairs, random masks, damage) -> ``objective`` (9-channel input,
epsilon / v targets, damage-aware weights) -> ``lora`` (what trains, how it is saved) -> ``loop``
(accelerate: step, checkpoint, resume, validate). ``prior`` generates DreamBooth class images.
"""

from .config import CONFIG_NAME, LORA_WEIGHTS, PARTIAL_WEIGHTS, LoraTrainConfig

__all__ = ["LoraTrainConfig", "LORA_WEIGHTS", "PARTIAL_WEIGHTS", "CONFIG_NAME", "train"]


def train(cfg: LoraTrainConfig):
    """Run a fine-tuning job (imports torch lazily); see :func:`inpaint_kit.train.loop.train`."""
    from .loop import train as _train

    return _train(cfg)
