#!/usr/bin/env python
"""Restore images with a diffusion inpainting model (same as ``inpaint-kit infer``; see docs/restoring.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from inpaint_kit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], only="infer"))
