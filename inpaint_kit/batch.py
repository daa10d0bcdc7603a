"""Directory runs: pair two trees, load the engine once, keep going past bad items, resume, and keep a
manifest (one JSON line per item) beside the outputs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .errors import InpaintKitError
from .inpaint import InferConfig, inpaint_file, write_job
from .pairing import pair

log = logging.getLogger("inpaint_kit")


@dataclass
class BatchReport:
    """What happened to every item of a batch run."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # output already there (resume)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    unpaired_images: list[Path] = field(default_factory=list)
    unpaired_masks: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        lines = [f"{len(self.written)} written, {len(self.skipped)} skipped (already done), {len(self.failed)} failed"]
        lines += [f"  failed: {msg}" for _, msg in self.failed]
        lines += [f"  unpaired image (no mask with its stem): {p}" for p in self.unpaired_images]
        lines += [f"  unpaired mask (no image with its stem): {p}" for p in self.unpaired_masks]
        return "\n".join(lines)


def collage_path(output_dir: Path, rel_image: Path) -> Path:
    """``<output_dir>/<sub/folders>/<stem>_collage.png``, mirroring the input tree."""
    return output_dir / rel_image.parent / f"{rel_image.stem}_collage.png"


def append_manifest(output_dir: Path, record: dict) -> None:
    """Append one JSON line (a single write, so concurrent or interrupted runs never split a line)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / "manifest.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def run_items(items, output_dir: Path, overwrite: bool, work, progress: bool = True,
              report: BatchReport | None = None) -> BatchReport:
    """The loop every batch command shares. ``items`` are ``(source, output, record)``; ``work(source,
    output)`` writes the output and returns ``(paths_written, metadata)``. Existing outputs are skipped
    unless ``overwrite`` (resume); an :class:`InpaintKitError` is reported and the run goes on; every
    item appends one manifest line."""
    report = report or BatchReport()
    for source, out, record in tqdm(items, desc="images", unit="img", disable=not progress):
        if out.exists() and not overwrite:
            report.skipped.append(out)
            continue
        try:
            paths, meta = work(source, out)
        except InpaintKitError as e:
            report.failed.append((source, str(e)))
            append_manifest(output_dir, {**record, "status": "failed", "error": str(e)})
            tqdm.write(f"error: {e}")
            continue
        report.written.append(out)
        append_manifest(output_dir, {**record, "status": "ok", "files": [str(p) for p in paths], **meta})
    return report


def run_batch(cfg: InferConfig, imgs_dir, masks_dir, output_dir, engine=None, progress: bool = True) -> BatchReport:
    """Inpaint every paired image under ``imgs_dir``; the engine is loaded once, on the first item that
    needs it (a fully resumed run loads nothing). Bad items are reported and skipped."""
    output_dir = Path(output_dir)
    pairing = pair(imgs_dir, masks_dir)
    if not pairing.pairs:
        raise InpaintKitError(f"{imgs_dir}: no image has a mask with the same stem in {masks_dir}; check both folders")
    masks = {image: mask for image, mask, _ in pairing.pairs}
    items = []
    for image, mask, rel in pairing.pairs:
        out = collage_path(output_dir, rel)
        items.append((image, out, {"image": str(image), "mask": str(mask), "output": str(out)}))

    def work(image_path: Path, out: Path):
        nonlocal engine
        job, engine = inpaint_file(cfg, image_path, masks[image_path], engine, progress=progress)
        return write_job(job, cfg, engine, out, stem=image_path.stem)

    report = BatchReport(unpaired_images=pairing.unpaired_images, unpaired_masks=pairing.unpaired_masks)
    return run_items(items, output_dir, cfg.overwrite, work, progress, report)
