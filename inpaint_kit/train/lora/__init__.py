"""``inpaint-kit train-lora``: LoRA / partial fine-tuning of an SD inpainting model. :mod:`.config` (flags,
no torch), :mod:`.data` (one example per draw), :mod:`.trainer` (:class:`LoraTrainer`, ``train(cfg)``),
:mod:`.prior` (DreamBooth class images); what trains and how it is saved: :mod:`inpaint_kit.train.adapters`."""
