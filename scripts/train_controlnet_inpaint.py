#!/usr/bin/env python
"""Train an inpainting ControlNet over a frozen SD 1.5-family model (same as ``inpaint-kit train-controlnet``;
see docs/finetuning.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from inpaint_kit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], only="train-controlnet"))
