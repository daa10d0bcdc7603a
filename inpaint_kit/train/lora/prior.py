"""DreamBooth prior preservation for inpainting (after diffusers' ``train_dreambooth_inpaint`` recipe).

Fine-tuning on a few dozen images of one subject drifts the model away from its general idea of the
class ("a mural"). To hold it in place, the base model first paints ``--num_class_images`` examples of
the class prompt on a fully masked canvas (i.e. from nothing), and every training batch then carries an
instance half and a class half; the class half's loss, times ``--prior_loss_weight``, is added.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...images import save_png
from ...pairing import scan


def missing_class_images(class_dir: str | Path, wanted: int) -> int:
    """How many class images still have to be generated in ``class_dir`` to reach ``wanted``."""
    class_dir = Path(class_dir)
    have = len(scan(class_dir)) if class_dir.is_dir() else 0
    return max(0, wanted - have)


def generate_class_images(pipe, class_dir: str | Path, class_prompt: str, wanted: int, size: int, seed: int,
                          steps: int = 25, progress: bool = True) -> list[Path]:
    """Fill ``class_dir`` up to ``wanted`` images of ``class_prompt`` painted by the (base) ``pipe`` on a
    fully masked ``size`` x ``size`` canvas; image ``i`` uses seed ``seed + i``. Returns the new files."""
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from ...progress import interactive

    class_dir = Path(class_dir)
    class_dir.mkdir(parents=True, exist_ok=True)
    have = len(scan(class_dir))
    canvas = Image.new("RGB", (size, size), (127, 127, 127))  # its content is masked out entirely
    full_mask = Image.new("L", (size, size), 255)  # diffusers: white = repaint
    pipe.set_progress_bar_config(disable=True)
    written = []
    for i in tqdm(range(have, wanted), desc="class images", disable=not (progress and interactive())):
        out = pipe(prompt=class_prompt, image=canvas, mask_image=full_mask, height=size, width=size,
                   num_inference_steps=steps, guidance_scale=5.0, output_type="np",
                   generator=torch.Generator("cpu").manual_seed(seed + i)).images[0]
        img = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        meta = {"prompt": class_prompt, "seed": seed + i, "steps": steps, "purpose": "prior preservation"}
        written.append(save_png(class_dir / f"class_{i:05d}.png", img, meta))
    return written
