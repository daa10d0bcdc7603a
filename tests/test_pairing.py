"""Pairing images and masks by stem across nested folders."""

from pathlib import Path

import pytest
from PIL import Image

from inpaint_kit.errors import InpaintKitError
from inpaint_kit.pairing import pair, scan


def _touch(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2, 2)).save(path)


def test_pairs_by_stem_nested_and_mask_suffix(tmp_path):
    imgs, masks = tmp_path / "imgs", tmp_path / "masks"
    for p in ["a.png", "sub/b.JPG", "sub/deep/c.jpeg", "lonely.png", "sub/x.webp"]:
        _touch(imgs / p)
    for p in ["a.png", "sub/b_mask.png", "elsewhere/c.png", "orphan.png", "sub/x.bmp"]:
        _touch(masks / p)
    (imgs / "notes.txt").write_text("not an image")
    (imgs / ".a.png.123.tmp").write_text("partial")
    result = pair(imgs, masks)
    got = {rel.as_posix(): m.relative_to(masks).as_posix() for _, m, rel in result.pairs}
    assert got == {"a.png": "a.png", "sub/b.JPG": "sub/b_mask.png", "sub/deep/c.jpeg": "elsewhere/c.png",
                   "sub/x.webp": "sub/x.bmp"}
    assert [p.name for p in result.unpaired_images] == ["lonely.png"]
    assert [p.name for p in result.unpaired_masks] == ["orphan.png"]


def test_scan_missing_dir_is_one_line_error(tmp_path):
    with pytest.raises(InpaintKitError, match="not a directory"):
        scan(tmp_path / "nope")
