#!/usr/bin/env python
"""DefectFill training: the same flags as ``inpaint-kit train-defect`` (see ``--help``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inpaint_kit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], only="train-defect"))
