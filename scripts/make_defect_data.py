#!/usr/bin/env python
"""Write a tiny synthetic MVTec-like dataset for trying DefectFill offline: grey discs on noise ("bottle"),
dark line scratches as the defect ("crack") with their masks, and defect-free train/good images.

    python scripts/make_defect_data.py outputs/defect_data            # MVTec AD layout, 64 px
    python scripts/make_defect_data.py outputs/defect_src --layout source --size 128
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inpaint_kit.train.defect.data import write_fixture  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="folder to write (<root>/bottle/...)")
    p.add_argument("--layout", choices=("mvtec", "source"), default="mvtec")
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--num_defects", type=int, default=4)
    p.add_argument("--num_good", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    root = write_fixture(a.root, n_defect=a.num_defects, n_good=a.num_good, size=a.size, layout=a.layout, seed=a.seed)
    print(f"wrote {root}/bottle ({a.layout} layout: defect type 'crack', {a.num_defects} references, {a.num_good} good)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
