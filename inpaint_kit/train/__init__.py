"""Training on accelerate: the shared :class:`~inpaint_kit.train.trainer.Trainer` base (checkpoints, resume,
mixed precision, multi-process, logging) and the SD inpainting fine-tuner built on it: UNet attention LoRA
(default), partial UNet training (``--train attn``), an optional text-encoder LoRA, and DreamBooth prior
preservation. The from-scratch DDPM trainer (:class:`inpaint_kit.ddpm.train.DdpmTrainer`) is built on the
same base; its config, :class:`DdpmTrainConfig`, lives in ``config`` with the others.

``config`` (configs and their flags, no torch) -> ``checkpoint`` (the run folder on disk, no torch) ->
``trainer`` (the base class) -> ``loop`` (:class:`LoraTrainer`, ``train(cfg)``), which uses ``data`` (pairs,
random masks, damage), ``objective`` (9-channel input, epsilon / v targets, damage-aware weights), ``lora``
(what trains, how it is saved) and ``prior`` (DreamBooth class images).
"""

from .config import CONFIG_NAME, LORA_WEIGHTS, PARTIAL_WEIGHTS, DdpmTrainConfig, LoraTrainConfig, TrainerConfig

__all__ = ["TrainerConfig", "LoraTrainConfig", "DdpmTrainConfig", "LORA_WEIGHTS", "PARTIAL_WEIGHTS", "CONFIG_NAME"]
