"""Detection accuracy: precision, recall and F1 at a pixel tolerance, IoU, and the share of pixels flagged.

**Tolerance** (default 2 px): a predicted damage pixel is correct when a true damage pixel lies within
``tolerance`` px of it, and a true damage pixel is found when a predicted one lies within ``tolerance`` px.
Why 2 px: the edge of a 1-3 px scratch or crack is itself uncertain by about a pixel (anti-aliasing, the
scan's blur, where "visibly changed" stops), so an exact pixel match would score a detector on that
uncertainty rather than on finding the damage; and a repair mask is grown by a pixel or two anyway before
inpainting. Two pixels is also the usual margin of crack-detection benchmarks (CrackForest, Shi et al.
2016), and it is small enough that a mask shifted off a thin scratch by its own width still scores badly.
IoU is reported without tolerance.

Counts are summed over images before the ratios are taken (micro-average), so a large image weighs by its
pixels, and an image without damage contributes its false positives to precision and to :attr:`flagged`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

TOLERANCE = 2
THRESHOLDS = (*np.round(np.arange(0.1, 0.951, 0.05), 2).tolist(), 0.97, 0.98, 0.985, 0.99, 0.995, 0.998)  # on validation


@dataclass
class Counts:
    """Pixel counts of one or more (prediction, truth) pairs; add them to pool images."""

    pred: int = 0  # predicted damage pixels
    pred_hit: int = 0  # ... within tolerance of true damage
    true: int = 0  # true damage pixels
    true_hit: int = 0  # ... within tolerance of a prediction
    inter: int = 0  # exact intersection (IoU)
    union: int = 0
    pixels: int = 0  # all pixels

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    @property
    def precision(self) -> float:
        """Share of predicted pixels within the tolerance of true damage (1 when nothing is predicted)."""
        return self.pred_hit / self.pred if self.pred else 1.0

    @property
    def recall(self) -> float:
        """Share of required damage pixels within the tolerance of a prediction (1 when there is none)."""
        return self.true_hit / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def iou(self) -> float:
        """Intersection over union of prediction and required damage, without tolerance."""
        return self.inter / self.union if self.union else 1.0

    @property
    def flagged(self) -> float:
        """Share of all pixels predicted as damage (the false-positive rate on clean photographs)."""
        return self.pred / self.pixels if self.pixels else 0.0

    def summary(self) -> dict:
        """The ratios as a dict (JSON reports)."""
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "iou": self.iou,
                "flagged": self.flagged, "pixels": self.pixels}


def near(mask: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels within ``tolerance`` px (Euclidean) of a True pixel of ``mask``."""
    import cv2

    if tolerance <= 0 or not mask.any():
        return mask.copy()
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist <= tolerance


def counts(pred: np.ndarray, true: np.ndarray, tolerance: float = TOLERANCE, ignore: np.ndarray | None = None) -> Counts:
    """The :class:`Counts` of one prediction against the truth (bool ``(H, W)`` each). ``ignore``: true
    damage pixels hidden by the picture's texture (:func:`inpaint_kit.detect.damage.hidden`): a prediction
    there is correct, but they are not required (recall and IoU count only the rest)."""
    if pred.shape != true.shape:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} differ in size")
    pred, true = pred.astype(bool), true.astype(bool)
    care = true if ignore is None else true & ~ignore
    union = pred | care if ignore is None else (pred | care) & ~ignore
    return Counts(pred=int(pred.sum()), pred_hit=int((pred & near(true, tolerance)).sum()), true=int(care.sum()),
                  true_hit=int((care & near(pred, tolerance)).sum()), inter=int((pred & care).sum()),
                  union=int(union.sum()), pixels=int(pred.size))


def best_threshold(probs: list[np.ndarray], truths: list[np.ndarray], clean: list[np.ndarray] = (),
                   max_flagged: float = 0.005, tolerance: float = TOLERANCE, ignores: list | None = None,
                   candidates=THRESHOLDS) -> tuple[float, Counts, Counts]:
    """The threshold (of ``candidates``) with the best F1 on the damaged ``probs`` vs ``truths`` (with their
    ``ignores``) among those flagging at most ``max_flagged`` of the pixels of the ``clean`` probability maps
    (the highest threshold when none does). Probabilities are ``uint16`` maps (x 65535) or floats in [0, 1].
    Returns ``(threshold, counts on damaged, counts on clean)``."""
    def binar(p, t):
        return p >= (t * 65535 if p.dtype == np.uint16 else t)

    ignores = ignores or [None] * len(truths)
    best = None
    for t in candidates:
        c_clean = sum((counts(binar(p, t), np.zeros(p.shape, bool), tolerance) for p in clean), Counts())
        c = sum((counts(binar(p, t), m, tolerance, i) for p, m, i in zip(probs, truths, ignores)), Counts())
        ok = c_clean.flagged <= max_flagged
        key = (ok, c.f1 if ok else t)
        if best is None or key > best[0]:
            best = (key, float(t), c, c_clean)
    return best[1], best[2], best[3]
