"""Training on accelerate. Every trainer has the same shape, a folder with ``config.py`` (its config
dataclass and flags, no torch), ``data.py`` (what each draw loads) and ``trainer.py`` (a subclass of the
shared :class:`~inpaint_kit.train.trainer.Trainer` and ``train(cfg)``):

* :mod:`.lora`: ``train-lora``, LoRA / partial fine-tuning of an SD inpainting model (+ DreamBooth prior);
* :mod:`.controlnet`: ``train-controlnet``, an inpaint ControlNet over a frozen SD 1.5-family model;
* :mod:`.ddpm`: ``train-ddpm``, the from-scratch DDPM inpainter (network and sampling: :mod:`inpaint_kit.ddpm`);
* :mod:`.defect`: ``train-defect``, DefectFill.

Shared at this level: :mod:`.config` (:class:`TrainerConfig`, ``option``), :mod:`.trainer` (the base class),
:mod:`.checkpoint` (the run folder on disk, no torch), :mod:`.samples` (``imgs/`` + ``masks/`` folders and
the seeded crop), :mod:`.base_model` (loading the frozen SD model), :mod:`.objective` (the SD latent
objective: 9-channel input, epsilon / v targets, damage-aware weights) and :mod:`.adapters` (LoRA adapters
and partial UNet training: what trains, how it is saved; ``train-lora`` and ``train-defect``).
"""
