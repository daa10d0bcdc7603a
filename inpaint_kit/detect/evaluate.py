"""Measuring detectors (``inpaint-kit eval-detect`` and ``bench/bench_detect.py``): precision / recall / F1 at
a pixel tolerance and IoU (:mod:`inpaint_kit.detect.metrics`) per damage kind on synthetic damage over
held-out photographs, the held-out generator setting separately, labelled pairs (imgs/ + masks/), and the
share of pixels flagged on clean photographs (with film grain added, and on real old photographs).

Every set is rendered from fixed seeds, so two detectors (or two runs) see the very same images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import negatives
from .damage import KINDS, DamageSettings, render
from .detector import Detector, to_mask
from .metrics import TOLERANCE, Counts, counts


@dataclass
class Case:
    """One image to score: ``image`` RGB uint8, ``truth`` bool (all False for a clean photo), ``group``
    (the table row it counts towards, e.g. a damage kind or ``clean+grain``)."""

    image: np.ndarray
    truth: np.ndarray
    group: str
    name: str = ""
    ignore: np.ndarray | None = None  # damage hidden by the picture's texture (Sample.ignore)


def upscale(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resized by ``factor`` (bicubic): a scan of the same print at a higher resolution."""
    import cv2

    if factor == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_CUBIC)


def synthetic_cases(photos: dict[str, np.ndarray], settings: DamageSettings, per_kind: int, seed: int,
                    factor: float = 1.0, kinds=KINDS, group_prefix: str = "") -> list[Case]:
    """For every kind, ``per_kind`` damaged versions of every photo (whole photo, upscaled by ``factor``;
    the damage drawn ``factor`` times larger too, as on a finer scan of the same print)."""
    out = []
    for k, kind in enumerate(kinds):
        for name, photo in sorted(photos.items()):
            for i in range(per_kind):
                rng = np.random.default_rng([seed, k, i, int(factor * 100), sum(map(ord, name))])
                scale = math.exp(rng.uniform(*np.log(settings.scale))) * factor
                s = render(upscale(photo, factor), rng, settings, kinds=(kind,), scale=scale, damaged=True)
                out.append(Case(s.image, s.mask, group_prefix + kind, f"{name}#{i}", s.ignore))
    return out


def clean_cases(photos: dict[str, np.ndarray], per_photo: int, seed: int, factor: float = 1.0) -> list[Case]:
    """Each photo (upscaled by ``factor``) as it is (group ``clean``) and with film grain added, ``per_photo``
    grain draws each (``clean+grain``): nothing in them is damage. Both, because grain textures a smooth sky
    or wall, which hides a detector that takes such areas for losses (none when ``per_photo`` is 0)."""
    out = []
    for name, photo in sorted(photos.items()) if per_photo > 0 else ():
        big = upscale(photo, factor)
        out.append(Case(big, np.zeros(big.shape[:2], bool), "clean", name))
        for i in range(per_photo):
            rng = np.random.default_rng([seed, 99, i, int(factor * 100), sum(map(ord, name))])
            img = negatives.film_grain(big.astype(np.float32) / 255, rng, rng.uniform(0.02, 0.05))
            out.append(Case(np.round(img * 255).astype(np.uint8), np.zeros(img.shape[:2], bool), "clean+grain",
                            f"{name}#{i}"))
    return out


def folder_cases(folder: str | Path, group: str, max_megapixels: float = 100) -> list[Case]:
    """Every image under ``folder`` as a clean case (real photographs: anything flagged counts)."""
    from ..images import load_image
    from ..pairing import scan

    return [Case(load_image(p, int(max_megapixels * 1e6)), None, group, p.name) for p in scan(folder)]


def pair_cases(folder: str | Path, group: str = "pairs", mask_mode: str = "black") -> list[Case]:
    """Labelled pairs under ``folder`` (imgs/ + masks/ paired by stem)."""
    from .labelled import load_pairs

    return [Case(img, mask, group, str(i)) for i, (img, mask) in enumerate(load_pairs(folder, mask_mode))]


@dataclass
class Scores:
    """Pooled :class:`Counts` per group, and the megapixels processed."""

    groups: dict[str, Counts] = field(default_factory=dict)
    megapixels: float = 0.0

    def add(self, group: str, c: Counts) -> None:
        """Pool ``c`` into ``group``."""
        self.groups[group] = self.groups.get(group, Counts()) + c

    def pooled(self, groups) -> Counts:
        """The counts of ``groups`` pooled (missing ones skipped)."""
        return sum((self.groups[g] for g in groups if g in self.groups), Counts())


def score(detector: Detector, cases: list[Case], threshold: float | None = None, min_area: int = 0,
          tolerance: float = TOLERANCE, scores: Scores | None = None) -> Scores:
    """Run ``detector`` on every case and pool the counts per group (``truth`` None = nothing is damage)."""
    scores = scores or Scores()
    t = detector.threshold if threshold is None else threshold
    for case in cases:
        pred = to_mask(detector.probability(case.image), t, min_area)
        truth = case.truth if case.truth is not None else np.zeros(pred.shape, bool)
        scores.add(case.group, counts(pred, truth, tolerance, case.ignore))
        scores.megapixels += pred.size / 1e6
    return scores


def held_out_settings(detector: Detector, base: DamageSettings) -> DamageSettings | None:
    """The settings of the generator setting this detector's training held out (None when none was)."""
    hold = detector.info.get("hold_out")
    if not hold:
        return None
    from dataclasses import replace

    return replace(base, hold_out=hold).held_out()


def table(rows: dict[str, dict[str, Counts]], metric_rows: list[str], clean_rows: list[str]) -> str:
    """A markdown table: one column per detector; F1 (P / R) and IoU for ``metric_rows``, % of pixels
    flagged for ``clean_rows``."""
    names = list(rows)
    lines = ["| set | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for r in metric_rows:
        cells = []
        for n in names:
            c = rows[n].get(r)
            cells.append("" if c is None else f"F1 {c.f1:.3f} (P {c.precision:.2f} / R {c.recall:.2f}), IoU {c.iou:.2f}")
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    for r in clean_rows:
        cells = ["" if rows[n].get(r) is None else f"{100 * rows[n][r].flagged:.3f} % flagged" for n in names]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
