"""``inpaint-kit eval-detect``: accuracy of damage detectors on held-out photographs (per damage kind, the
held-out generator setting, labelled pairs) and the share of pixels they flag on clean photographs."""

from __future__ import annotations

import argparse
import json
import sys

HELP = ("measure damage detectors: P/R/F1 at a pixel tolerance and IoU per damage kind on held-out photos, "
        "the held-out setting, labelled pairs, and pixels flagged on clean photos")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..detect.damage import KINDS
    from ..detect.detector import DTYPES
    from ..detect.metrics import TOLERANCE
    from . import flags

    p.add_argument("--model", nargs="+", default=["builtin", "classical"],
                   help="detectors to compare: builtin, classical and/or train-detect output folders")
    p.add_argument("--data", help="folder of clean held-out photographs (never trained on): synthetic damage is "
                                  "drawn on them (required)")
    flags.alias(p, "--images", dest="data")
    flags.require(p, "data")
    p.add_argument("--per_kind", type=int, default=2, help="damaged versions of every photo per damage kind")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated damage kinds")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0],
                   help="resolutions: 1 = the photos' native size, 2 = a scan twice as fine (photo and damage 2x)")
    p.add_argument("--clean", type=int, default=2, help="grain draws per photo for the clean-photo false-positive rate")
    p.add_argument("--real_clean", nargs="*", default=[],
                   help="folders of real photographs with little damage (e.g. old scans): share of pixels flagged")
    p.add_argument("--pairs", nargs="*", default=[],
                   help="folders with imgs/ + masks/ of labelled damage (black = damage), scored as they are")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help="pixel tolerance of precision and recall (2 px: see docs/detection.md)")
    p.add_argument("--threshold", type=float, default=None, help="override every model's threshold")
    p.add_argument("--min_area", type=int, default=0, help="drop detected specks smaller than N pixels")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic damage (the same for every model)")
    p.add_argument("--json", default=None, help="also write every count as JSON to this file")
    flags.add_device(p)
    p.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="the network detectors' arithmetic: auto = bf16 where native, else fp32 (classical: float32)")


def run(args: argparse.Namespace) -> int:
    from ..detect.damage import KINDS, DamageSettings
    from ..detect.detector import load_detector
    from ..detect.evaluate import (clean_cases, folder_cases, held_out_settings, pair_cases, score,
                                   synthetic_cases, table)
    from ..errors import InpaintKitError
    from ..images import load_image
    from ..pairing import scan

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise InpaintKitError(f"--kinds {args.kinds}: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(KINDS)}")
    if args.per_kind < 0 or args.clean < 0 or any(s <= 0 for s in args.scales):
        raise InpaintKitError("--per_kind and --clean must be >= 0 and --scales positive")
    photos = {p.name: load_image(p) for p in scan(args.data)}
    if not photos:
        raise InpaintKitError(f"--data {args.data}: no images found")
    detectors = [load_detector(m, args.device, args.threshold, dtype="auto" if m == "classical" else args.dtype)
                 for m in args.model]  # one-line errors first
    if args.dtype == "bf16" and "classical" in args.model:
        print("--dtype bf16 applies to the network detectors; classical runs in float32", file=sys.stderr)
    base = DamageSettings()
    results = {}
    for det in detectors:
        groups = {}
        for factor in args.scales:
            tag = "" if factor == 1 else f"{factor:g}x "
            cases = synthetic_cases(photos, base, args.per_kind, args.seed, factor, kinds, tag)
            cases += clean_cases(photos, args.clean, args.seed, factor)
            s = score(det, cases, min_area=args.min_area, tolerance=args.tolerance)
            groups.update({(g if g.startswith(tag) else tag + g): c for g, c in s.groups.items()})
            groups[f"{tag}all kinds"] = s.pooled([tag + k for k in kinds])
        held = held_out_settings(det, base)
        if held is not None:
            s = score(det, synthetic_cases(photos, held, args.per_kind, args.seed + 1, 1.0, held.kinds, "held:"),
                      min_area=args.min_area, tolerance=args.tolerance)
            groups[f"held-out setting ({det.info['hold_out']})"] = s.pooled(list(s.groups))
        for folder in args.pairs:
            s = score(det, pair_cases(folder, f"pairs {folder}"), min_area=args.min_area, tolerance=args.tolerance)
            groups.update(s.groups)
        for folder in args.real_clean:
            s = score(det, folder_cases(folder, f"real photos {folder}"), min_area=args.min_area)
            groups.update(s.groups)
        results[det.name] = groups
    metric_rows = list(dict.fromkeys(g for r in results.values() for g in r
                                     if not g.startswith(("real photos", )) and "clean" not in g))
    clean_rows = list(dict.fromkeys(g for r in results.values() for g in r if g.startswith("real photos") or "clean" in g))
    print(table(results, metric_rows, clean_rows))
    if args.json:
        from pathlib import Path

        from ..images import atomic_write

        data = {m: {g: {**c.summary(), **vars(c)} for g, c in r.items()} for m, r in results.items()}
        atomic_write(args.json, lambda p: Path(p).write_text(json.dumps(data, indent=2)))
        print(f"counts: {args.json}", file=sys.stderr)
    return 0
