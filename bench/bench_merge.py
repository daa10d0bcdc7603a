"""Peak memory of ``merge-inpaint`` (issue 23): the streamed add-difference merge against loading the
three models whole, measured in one run.

    .venv/bin/python bench/bench_merge.py                                   # the default runs below
    .venv/bin/python bench/bench_merge.py --runs small:stream,small:whole   # choose preset:method pairs
    .venv/bin/python bench/bench_merge.py --markdown docs/benchmarks.md

The three models are random-weight pipelines of the preset written as diffusers folders (fp32
safetensors): A = the inpainting architecture (9-channel UNet), B and C = the text-to-image one
(4 channels, two seeds). They are built once into ``--work`` and reused. Each method runs in a fresh
child process, which samples its own ``/proc/self/status`` every 10 ms:

* ``stream``: ``inpaint_kit.merge.merge_inpaint`` (UNets read tensor by tensor with safetensors'
  ``safe_open``; the text encoder and VAE from C's pipeline, loaded once and dropped);
* ``stream_single``: the same with ``--single_file`` too (the original-layout checkpoint shares the
  merged tensors);
* ``whole``: the obvious way, three pipelines loaded with ``load_pipeline`` and merged in memory
  (the same arithmetic), then saved with ``save_pretrained``. By default it runs on the ``small``
  preset only: on ``sd15`` it needs three models' worth of memory (12 GB) on a shared machine.

Reported: the peak of anonymous memory (``RssAnon``: the tensors the process allocated) and the kernel's
peak RSS (``VmHWM``, which also counts pages of the memory-mapped input files: those are page cache
the kernel can drop, not allocations), both minus the child's memory after its imports, and divided by
the size of one whole model (the sum of A's weight files). The machine is shared; memory peaks do not
depend on load the way times do, the times are printed for orientation only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

SECTION = "## Memory: merge-inpaint, streamed vs three models loaded"
REPO = Path(__file__).resolve().parents[1]


def status() -> dict[str, int]:
    """RssAnon, VmRSS, VmHWM of this process in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def child(method: str, work: Path) -> None:
    """Run one merge in this (fresh) process and print its memory as JSON."""
    import torch

    from inpaint_kit.merge import MergeConfig, merge_inpaint

    torch.set_num_threads(1)
    import diffusers  # noqa: F401 (imports before the baseline)
    import transformers  # noqa: F401

    base = status()
    peak = {"RssAnon": base["RssAnon"]}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["RssAnon"] = max(peak["RssAnon"], status()["RssAnon"])
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = work / f"out_{method}"
    t = time.perf_counter()
    if method.startswith("stream"):
        single = str(work / f"out_{method}.safetensors") if method == "stream_single" else None
        merge_inpaint(MergeConfig(inpaint=str(work / "A"), base=str(work / "B"), custom=str(work / "C"),
                                  output_dir=str(out), single_file=single, overwrite=True), progress=False)
    else:
        whole(work, out)
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    end = status()
    print(json.dumps({"base_anon": base["RssAnon"], "base_rss": base["VmRSS"], "peak_anon": peak["RssAnon"],
                      "peak_rss": end["VmHWM"], "seconds": seconds}))


def whole(work: Path, out: Path) -> None:
    """The reference: three pipelines in memory, the same add difference, save_pretrained."""
    import shutil

    import torch

    from inpaint_kit.engine.sd import load_pipeline

    a, b, c = (load_pipeline(str(work / n)) for n in "ABC")
    sa, sb, sc = (p.unet.state_dict() for p in (a, b, c))
    with torch.no_grad():
        for key, ta in sa.items():
            diff = sc[key] - sb[key]
            if key == "conv_in.weight":  # A's extra input channels stay
                ta[:, : diff.shape[1]] += diff
            else:
                ta += diff
    a.text_encoder, a.vae = c.text_encoder, c.vae
    shutil.rmtree(out, ignore_errors=True)
    a.save_pretrained(out, safe_serialization=True)


def build(preset: str, work: Path) -> None:
    from inpaint_kit.presets import write_tiny_model

    for name, seed, base in (("A", 0, False), ("B", 1, True), ("C", 2, True)):
        if not (work / name / "model_index.json").is_file():
            print(f"building {preset} model {name} ...", file=sys.stderr, flush=True)
            write_tiny_model(work / name, preset=preset, seed=seed, base=base)


def model_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.safetensors"))


DEFAULT_RUNS = "sd15:stream,sd15:stream_single,small:stream,small:whole"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=DEFAULT_RUNS, help="comma-separated preset:method (methods: stream, stream_single, whole)")
    ap.add_argument("--work", default=None, help="parent folder of the models (default outputs/); <work>/bench_merge_<preset>/")
    ap.add_argument("--markdown", default=None, help="write the table into this file's section")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--preset", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    parent = Path(args.work or REPO / "outputs")
    if args.child:
        child(args.child, parent / f"bench_merge_{args.preset}")
        return 0
    gb = 1024**3
    lines = ["| preset | one model (weights) | method | peak allocated (RssAnon) | / one model | "
             "peak RSS incl. mapped files (VmHWM) | / one model | time |",
             "|---|---|---|---|---|---|---|---|"]
    for run in args.runs.split(","):
        preset, method = run.split(":")
        work = parent / f"bench_merge_{preset}"
        build(preset, work)
        one = model_bytes(work / "A")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        res = subprocess.run([sys.executable, __file__, "--preset", preset, "--work", str(parent), "--child", method],
                             capture_output=True, text=True, env=env)
        if res.returncode:
            print(res.stderr, file=sys.stderr)
            return res.returncode
        m = json.loads(res.stdout.strip().splitlines()[-1])
        anon, rss = m["peak_anon"] - m["base_anon"], m["peak_rss"] - m["base_rss"]
        lines.append(f"| {preset} | {one / gb:.2f} GB | {method} | {anon / gb:.2f} GB | {anon / one:.2f} | "
                     f"{rss / gb:.2f} GB | {rss / one:.2f} | {m['seconds']:.0f} s |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        sys.path.insert(0, str(Path(__file__).parent))
        from markdown_section import write_section

        cmd = " ".join(["bench/bench_merge.py", *sys.argv[1:]])
        write_section(Path(args.markdown), SECTION,
                      f"`.venv/bin/python {cmd}` (each run in a child process, one torch thread, fp32 models; "
                      "memory is counted after the child's imports; the machine was shared, so times are for "
                      "orientation only; they include hashing the three inputs). stream = `merge-inpaint`, "
                      "stream_single = with `--single_file` too, whole = the three pipelines loaded with `load_pipeline` "
                      "and merged in memory. diffusers maps safetensors weights from their files, so loaded models "
                      "show in VmHWM (resident pages of the mapped files) more than in RssAnon: VmHWM is what the "
                      "process held at its peak.\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
