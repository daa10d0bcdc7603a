"""Directory runs: pair two trees, load the engine once, keep going past bad items, resume, and keep a
manifest (one JSON line per item) beside the outputs.

Resume rules (the same for ``infer`` and ``outpaint``, batch or single image):

- an item's files are written rows first, collage last, so an existing collage means every file existed;
  resume still checks every expected file and completes an item with missing files (same seeds);
- an existing output counts as done only when the ``request`` recorded in it (the settings that made it,
  :func:`inpaint_kit.inpaint.request`) equals the current run's (:func:`~inpaint_kit.inpaint.same_request`);
  otherwise the item is reported as
  "differs" (never silently skipped, never overwritten without ``--overwrite``);
- nor when the files it was made from (image, mask, and the model, LoRA, ControlNet and thin-filler
  weights) are not the ones there now: the sha256 recorded in it (``inputs_sha256``,
  :func:`inpaint_kit.record.input_digests`, :func:`~inpaint_kit.record.model_digests`) is compared with the
  files', so an image re-scanned or a model retrained under the same name is reported as "changed" (with
  ``--overwrite`` it is redone), never skipped;
- the manifest holds exactly one line per item (the latest), rewritten atomically at the start and end
  of a run; lines are appended as items finish, so a killed run loses nothing.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import progress as bars
from .errors import InpaintKitError
from .images import atomic_write, read_metadata
from .inpaint import InferConfig, inpaint_file, job_paths, request, same_request, write_job
from .pairing import pair
from .record import input_digests, inputs_of
from .shard import Shard, gather, wait_for_everyone

log = logging.getLogger("inpaint_kit")

MANIFEST = "manifest.jsonl"
DIFFERS = "made with other settings (differs: pass --overwrite or another output)"


def changed(recorded: dict, now: dict) -> str:
    """Why an output made from the files hashed in ``recorded`` is not done: which of them differ from ``now``."""
    what = [k for k in sorted({*recorded, *now}) if recorded.get(k) != now.get(k)]
    return (f"made from another version of its {' and '.join(what)} (changed: sha256 differs; pass --overwrite "
            "to redo it)")


def refusal(state: str, meta: dict, inputs: dict | None) -> str:
    """The report line of an output :func:`output_state` calls ``differs`` or ``changed``."""
    return DIFFERS if state == "differs" else changed(meta.get("inputs_sha256") or {}, inputs or {})


@dataclass
class BatchReport:
    """What happened to every item of a batch run."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # output already there with the same settings (resume)
    differs: list[Path] = field(default_factory=list)  # output already there, made with other settings
    changed: list[tuple[Path, str]] = field(default_factory=list)  # output there, made from other files: (output, why)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    unpaired_images: list[Path] = field(default_factory=list)
    unpaired_masks: list[Path] = field(default_factory=list)
    clashes: list[tuple[list[Path], list[Path]]] = field(default_factory=list)  # (images, their outputs)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.differs or self.changed else 0

    @classmethod
    def combine(cls, reports: list["BatchReport"]) -> "BatchReport":
        """One report for the processes of a sharded run: items summed; the pairing findings (the same
        scan on every process) taken once."""
        first = reports[0]
        return cls(written=[p for r in reports for p in r.written], skipped=[p for r in reports for p in r.skipped],
                   differs=[p for r in reports for p in r.differs], changed=[c for r in reports for c in r.changed],
                   failed=[f for r in reports for f in r.failed],
                   unpaired_images=first.unpaired_images, unpaired_masks=first.unpaired_masks, clashes=first.clashes)

    def summary(self) -> str:
        lines = [f"{len(self.written)} written, {len(self.skipped)} skipped (already done), {len(self.failed)} failed"
                 + (f", {len(self.differs)} differ" if self.differs else "")
                 + (f", {len(self.changed)} made from changed files" if self.changed else "")]
        lines += [f"  failed: {msg}" for _, msg in self.failed]
        lines += [f"  {p}: {DIFFERS}" for p in self.differs]
        lines += [f"  {p}: {why}" for p, why in self.changed]
        lines += [f"  same stem: {' and '.join(p.name for p in images)} in {images[0].parent} -> "
                  f"{', '.join(o.name for o in outs)}" for images, outs in self.clashes]
        lines += [f"  unpaired image (no mask with its stem): {p}" for p in self.unpaired_images]
        lines += [f"  unpaired mask (no image with its stem): {p}" for p in self.unpaired_masks]
        return "\n".join(lines)


def collage_path(output_dir: Path, rel_image: Path, stem: str | None = None) -> Path:
    """``<output_dir>/<sub/folders>/<stem>_collage.png``, mirroring the input tree (``stem``: the output
    stem when it is not the file's, see :func:`inpaint_kit.pairing.output_stems`)."""
    return output_dir / rel_image.parent / f"{stem or rel_image.stem}_collage.png"


def output_state(collage: Path, want: dict, expected: Callable[[dict], list[Path]],
                 inputs: dict | None = None) -> tuple[str, dict]:
    """``(state, metadata)`` of an item whose last-written file is ``collage``: ``todo`` (absent),
    ``differs`` (not made with the ``want`` request, or not ours), ``changed`` (made from files other than
    ``inputs``, their sha256 by role; outputs written before inputs were recorded are taken as made from
    them), ``partial`` (same request, but a file of ``expected(metadata)`` is missing) or ``done``."""
    if not collage.exists():
        return "todo", {}
    try:
        meta = read_metadata(collage)
    except Exception:  # not a PNG of ours: never overwrite it silently
        return "differs", {}
    if not same_request(meta.get("request"), want):
        return "differs", meta
    recorded = meta.get("inputs_sha256")
    if inputs is not None and recorded is not None and recorded != inputs:
        return "changed", meta
    if not all(p.exists() for p in expected(meta)):
        return "partial", meta
    return "done", meta


def read_manifest(output_dir: Path) -> dict[str, dict]:
    """The manifest's records by output path, the last line of each output winning (a killed run may
    have left a torn last line: it is dropped)."""
    records = {}
    path = output_dir / MANIFEST
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            records[rec.get("output", "")] = rec
    return records


@contextmanager
def manifest_lock(output_dir: Path):
    """Serialise manifest writes of processes sharing ``output_dir`` (sharded batches): an append never
    lands between another process's read and rename. A no-op where ``fcntl`` is missing (Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / ".manifest.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def compact_manifest(output_dir: Path) -> dict[str, dict]:
    """Rewrite the manifest atomically with one line per item (the latest; lines appended by every
    process that shares the folder count), and return its records."""
    with manifest_lock(output_dir):
        records = read_manifest(output_dir)
        if records:
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records.values())
            atomic_write(output_dir / MANIFEST, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return records


def append_manifest(output_dir: Path, record: dict) -> None:
    """Append one JSON line (a single write under the lock, so concurrent or interrupted runs never split
    a line)."""
    with manifest_lock(output_dir):
        with open(output_dir / MANIFEST, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def run_items(items, output_dir: Path, overwrite: bool, work, progress: bool = True,
              report: BatchReport | None = None, want: dict | None = None,
              expected: Callable[[Path, dict], list[Path]] | None = None, shard: Shard | None = None,
              inputs: Callable[[object, dict], dict] | None = None) -> BatchReport:
    """The loop every batch command shares. ``items`` are ``(source, output, record)``; ``work(source,
    output, seeds)`` writes the item's files (``seeds`` None = the config's; else the seeds to complete a
    partial item with) and returns ``(paths_written, metadata)``. Without ``overwrite``, an output whose
    recorded request equals ``want`` and whose ``expected(output, metadata)`` files all exist is skipped;
    one with another request is reported as differing, one made from other files as changed:
    ``inputs(source, record)`` gives their sha256 by role (default: the ``image`` and ``mask`` files of the
    record, :func:`~inpaint_kit.record.input_digests`; add :func:`~inpaint_kit.record.model_digests`). An
    :class:`InpaintKitError` is reported and the run goes on. The manifest ends with one line per item.

    With a ``shard`` (:mod:`inpaint_kit.shard`), this process does only its share of ``items`` (which
    must be in the same deterministic order on every process); processes launched together wait for
    each other at the end and every one returns the combined report."""
    report = report or BatchReport()
    shard = shard or Shard()
    expected = expected or (lambda out, meta: [out])
    items = shard.take(list(items))
    if shard.active:
        log.info("%s: %d item(s) in this process", shard.describe(), len(items))
    records = compact_manifest(output_dir)  # what earlier (maybe killed) runs appended, one line per item
    for source, out, record in bars.items(items, desc="images", unit="img", enabled=progress):
        seeds = None
        if not overwrite:
            now = inputs(source, record) if inputs is not None else input_digests(record)
            state, meta = output_state(out, want, lambda m: expected(out, m), now)
            if state == "done":
                report.skipped.append(out)
                if str(out) not in records:  # killed between the last file and its manifest line
                    records[str(out)] = {**record, "status": "ok", "files": [str(p) for p in expected(out, meta)],
                                         **meta}
                    append_manifest(output_dir, records[str(out)])
                continue
            if state in ("differs", "changed"):
                why = refusal(state, meta, now)
                if state == "differs":
                    report.differs.append(out)
                else:
                    report.changed.append((out, why))
                bars.write(f"{out}: {why}")
                continue
            if state == "partial":
                seeds = meta.get("seeds")
        try:
            paths, meta = work(source, out, seeds)
        except InpaintKitError as e:
            report.failed.append((source, str(e)))
            records[str(out)] = {**record, "status": "failed", "error": str(e)}
            append_manifest(output_dir, records[str(out)])
            bars.write(f"error: {e}")
            continue
        report.written.append(out)
        records[str(out)] = {**record, "status": "ok", "files": [str(p) for p in paths], **meta}
        append_manifest(output_dir, records[str(out)])
    wait_for_everyone(shard)  # launched together: every process's lines are in before the last compaction
    compact_manifest(output_dir)
    return BatchReport.combine(gather(shard, report)) if shard.launched else report


def resume_single(cfg: InferConfig, output: Path, stem: str, sources: dict) -> tuple[bool, list[int] | None]:
    """For a single-image run writing ``output`` from the input files ``sources`` (``{"image": path, "mask":
    path or None}``) and ``cfg``'s models: ``(skip, seeds)``. Skip when it is done with the same settings
    from the same files; complete a partial one with its recorded seeds; an output made with other settings
    or from other files is a one-line :class:`~inpaint_kit.errors.OutputError` (unless ``cfg.overwrite``)."""
    from .errors import OutputError

    if cfg.overwrite:
        return False, None
    inputs = input_digests(sources, cfg)
    state, meta = output_state(output, request(cfg), lambda m: job_paths(cfg, output, stem, m.get("seeds", []),
                                                                         m.get("row_format", "png")), inputs)
    if state in ("differs", "changed"):
        raise OutputError(f"{output} exists, {refusal(state, meta, inputs)}")
    if state == "done":
        log.info("%s exists with the same settings; skipped (pass --overwrite to redo it)", output)
    return state == "done", meta.get("seeds") if state == "partial" else None


def run_batch(cfg: InferConfig, imgs_dir, masks_dir, output_dir, engine=None, progress: bool = True,
              shard: Shard | None = None, detector=None) -> BatchReport:
    """Inpaint every paired image under ``imgs_dir``; the engine (and with ``cfg.detect`` the damage
    detector) is loaded once, on the first item that needs it (a fully resumed run loads nothing). Bad
    items are reported and skipped. Images of one folder sharing a stem (``a.png``, ``a.jpg``) are all
    restored, as ``a_png_collage.png`` and ``a_jpg_collage.png``, and reported. ``masks_dir`` None (with
    ``cfg.detect == "auto"``): every image under ``imgs_dir``, its mask the detected damage."""
    from functools import cache

    output_dir = Path(output_dir)
    if masks_dir is None:
        pairing = detected_pairing(imgs_dir)
    else:
        pairing = pair(imgs_dir, masks_dir)
        if not pairing.pairs:
            raise InpaintKitError(f"{imgs_dir}: no image has a mask with the same stem in {masks_dir}; check both "
                                  "folders")
    masks = {image: mask for image, mask, _ in pairing.pairs}
    items, stems = [], {}
    for image, mask, rel in pairing.pairs:
        out = collage_path(output_dir, rel, pairing.stems[image])
        stems[out] = pairing.stems[image]
        items.append((image, out, {"image": str(image), "mask": str(mask) if mask else "auto", "output": str(out)}))
    outs = {image: out for image, out, _ in items}
    if cfg.detect and detector is None:
        detector = cache(cfg.load_detector)  # loaded on the first item that needs it, then reused

    def work(image_path: Path, out: Path, seeds):
        nonlocal engine
        job, engine = inpaint_file(cfg, image_path, masks[image_path], engine, seeds=seeds, progress=progress,
                                   detector=detector)
        return write_job(job, cfg, engine, out, stem=stems[out])

    report = BatchReport(unpaired_images=pairing.unpaired_images, unpaired_masks=pairing.unpaired_masks,
                         clashes=[(group, [outs[i] for i in group]) for group in pairing.clashes])
    for group, names in report.clashes:
        log.warning("same stem in one folder: %s -> %s", ", ".join(map(str, group)), ", ".join(n.name for n in names))
    return run_items(items, output_dir, cfg.overwrite, work, progress, report, want=request(cfg),
                     expected=lambda out, meta: job_paths(cfg, out, stems[out], meta.get("seeds", []),
                                                          meta.get("row_format", "png")), shard=shard,
                     inputs=inputs_of(cfg))


def detected_pairing(imgs_dir):
    """A :class:`~inpaint_kit.pairing.Pairing` of every image under ``imgs_dir`` with no mask file (``None``:
    the mask is detected), stems and same-stem clashes as :func:`~inpaint_kit.pairing.pair` gives them."""
    from .pairing import Pairing, output_stems, scan

    root = Path(imgs_dir)
    images = scan(root)
    if not images:
        raise InpaintKitError(f"--batch_imgs_dir {imgs_dir}: no images found (png/jpg/webp/bmp/tif, recursively)")
    stems, clashes = output_stems(images)
    return Pairing([(i, None, i.relative_to(root)) for i in images], stems=stems, clashes=clashes)
