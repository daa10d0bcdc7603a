#!/usr/bin/env python
"""Fine-tune an SD inpainting model with LoRA or partial training (same as ``inpaint-kit train-lora``;
see docs/finetuning.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from inpaint_kit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], only="train-lora"))
