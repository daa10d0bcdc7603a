"""The ``inpaint-kit ui`` page: gradio Blocks wired to :mod:`inpaint_kit.ui.handlers` (which does all the work
with the library's functions). This module only lays out components and turns errors into readable
messages in the page.

Why the image is uploaded as a file and not straight into the painting canvas: the canvas hands back its
own re-encoding of the picture, while the file upload keeps the original bytes, so the model sees exactly
what ``inpaint-kit infer --image`` would read. The canvas only contributes the brush strokes (the mask).
"""

from __future__ import annotations

import functools
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls from a local tool

import gradio as gr  # noqa: E402

from ..engine.options import SCHEDULERS  # noqa: E402
from ..errors import InpaintKitError  # noqa: E402
from ..geometry import AREAS  # noqa: E402
from ..inpaint import InferConfig  # noqa: E402
from ..outpaint import FILLS, OutpaintConfig  # noqa: E402
from . import handlers  # noqa: E402

D, O = InferConfig(), OutpaintConfig()  # the page's defaults are the CLI's

log = logging.getLogger("inpaint_kit")

BRUSH_COLOUR = "#ff00ff"  # strokes are a mask: one colour, only coverage matters
BRUSH_RGB = (255, 0, 255)  # the same colour for the detected damage painted into the layer


def readable(fn):
    """Run a handler; a user error becomes its one-line message in the page, anything else a short
    message (the traceback goes to the server's log only). The server keeps serving either way."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except InpaintKitError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:  # noqa: BLE001 - the page must show something readable, never a traceback
            log.exception("ui: request failed")
            raise gr.Error(f"{type(e).__name__}: {e} (details in the server's log)", print_exception=False) from None

    return wrapper


def sampling_controls(prefix: str, models: list[str], loras: list[str], default_model: str, outpaint: bool) -> dict:
    """Model and sampling inputs, one set per tab (named like the CLI flags and with their defaults; element ids
    ``<prefix>-<flag>``)."""
    c = {}
    with gr.Row():
        c["model"] = gr.Dropdown(models, value=default_model, allow_custom_value=True, label="Model",
                                 info="builtin, a folder under weights/, or type a hub id / path")
        c["lora"] = gr.Dropdown(loras, value="", allow_custom_value=True, label="LoRA", info="optional folder or file")
        c["lora_scale"] = gr.Slider(0, 2, value=D.lora_scale, step=0.05, label="LoRA scale")
    c["prompt"] = gr.Textbox(value=D.prompt, label="Prompt", lines=1)
    c["negative_prompt"] = gr.Textbox(value=D.negative_prompt, label="Negative prompt", lines=1)
    with gr.Row():
        c["steps"] = gr.Number(value=D.steps, precision=0, label="Steps")
        c["guidance"] = gr.Number(value=D.guidance, label="Guidance")
        c["seed"] = gr.Number(value=D.seed, precision=0, label="Seed", info="row i uses seed+i; 0 = random")
        c["rows"] = gr.Number(value=D.rows, precision=0, label="Candidates (rows)")
        c["size"] = gr.Number(value=D.size, precision=0, label="Size", info="long side of the working canvas")
    with gr.Accordion("More settings", open=False):
        with gr.Row():
            c["scheduler"] = gr.Dropdown(list(SCHEDULERS), value=D.scheduler, label="Scheduler (SD models)")
            if outpaint:
                c["seam_blend"] = gr.Number(value=O.seam_blend, precision=0, label="Seam blend (px)")
            else:
                c["area"] = gr.Radio(list(AREAS), value=D.area, label="Area")
                c["padding"] = gr.Number(value=D.padding, precision=0, label="Padding (crops)")
                c["mask_dilate"] = gr.Number(value=D.mask_dilate, precision=0, label="Mask dilate")
                c["mask_blur"] = gr.Number(value=D.mask_blur, precision=0, label="Mask blur (px)")
    for name, component in c.items():
        component.elem_id = f"{prefix}-{name}"
    return c


def result_area(prefix: str) -> dict:
    """Status line, candidates beside the original, before/after of the selected one, collage, downloads."""
    r = {}
    r["status"] = gr.Markdown(elem_id=f"{prefix}-status")
    r["gallery"] = gr.Gallery(label="Original and candidates (click one to compare)", columns=4, format="png",
                              elem_id=f"{prefix}-gallery", buttons=["download", "fullscreen"])
    r["slider"] = gr.ImageSlider(label="Before / after", format="png", elem_id=f"{prefix}-slider")
    r["collage"] = gr.Image(label="Collage", type="filepath", format="png", elem_id=f"{prefix}-collage")
    r["files"] = gr.File(label="Downloads: each candidate as the upload (same format, depth, profile; the CLI's "
                               "metadata), the conservator's record (mask, fill layers, record.json) and the collage",
                         file_count="multiple", elem_id=f"{prefix}-files")
    r["state"] = gr.State(None)
    return r


def show(run: handlers.Run) -> tuple:
    """Outputs of a finished run, in :func:`result_area` order. The gallery shows PNG rows as written and
    TIFF rows (which browsers do not show) as their 8-bit sRGB view; the downloads are the files."""
    shown = [str(p) if p.suffix == ".png" else r for p, r in zip(run.rows, run.results)]
    gallery = [(run.before, "original")] + [(x, f"seed {s}") for x, s in zip(shown, run.seeds)]
    state = {"before": run.before, "results": run.results}
    return (run.summary(), gallery, (run.before, run.results[0]), str(run.collage),
            [str(p) for p in (*run.rows, *run.record)] + [str(run.collage)], state)


def select(state, evt: gr.SelectData):
    """Before/after for the clicked gallery item (the original compares with the first candidate)."""
    if not state:
        return None
    i = max(int(evt.index) - 1, 0)
    return state["before"], state["results"][min(i, len(state["results"]) - 1)]


def build_app(cache: handlers.EngineCache, *, model: str = "builtin", device=None, dtype: str = "auto",
              output_dir="outputs/ui", weights_dir="weights", cache_dir=None) -> gr.Blocks:
    """The Blocks app. ``device``/``dtype``/``cache_dir`` are the server's (every request runs there)."""
    models = handlers.model_choices(weights_dir, (model,))
    loras = handlers.lora_choices(weights_dir)
    server = {"device": device, "dtype": dtype, "cache_dir": cache_dir}
    detectors = handlers.DetectorCache()
    with gr.Blocks(title="inpaint-kit", analytics_enabled=False) as app:
        gr.Markdown("## inpaint-kit: restore and outpaint\nUpload an image, paint over the damage (or upload a "
                    "mask file), and Run. Each candidate downloads as the upload's drop-in replacement (a "
                    "16-bit TIFF gives 16-bit TIFFs with its profile) carrying the same metadata as "
                    "`inpaint-kit infer`, with the conservator's record; the same inputs give the same pixels.")
        with gr.Tab("Restore"):
            with gr.Row():
                with gr.Column():
                    image = gr.File(label="Image file", type="filepath", elem_id="restore-image")
                    editor = gr.ImageEditor(
                        label="Paint the repair region (brush; eraser, undo and clear in the toolbar)",
                        type="numpy", image_mode="RGBA", sources=[], transforms=[], layers=False,
                        brush=gr.Brush(colors=[BRUSH_COLOUR], default_color=BRUSH_COLOUR, color_mode="fixed",
                                       default_size=12),
                        eraser=gr.Eraser(default_size=12), format="png", elem_id="restore-editor")
                    with gr.Row():
                        detect_r = gr.Button("Detect damage", elem_id="restore-detect")
                        detector = gr.Dropdown(["builtin", "classical"], value="builtin", allow_custom_value=True,
                                               label="Detector", info="builtin, classical or a train-detect folder "
                                                                      "(docs/detection.md)")
                    with gr.Row():
                        mask = gr.File(label="Mask file (optional; added to the strokes)", type="filepath",
                                       elem_id="restore-mask")
                        mask_mode = gr.Radio(["black", "white"], value=D.mask_mode, label="Mask mode",
                                             info="which colour of the mask file marks the repair region")
                    rc = sampling_controls("restore", models, loras, model, outpaint=False)
                    run_r = gr.Button("Run", variant="primary", elem_id="restore-run")
                with gr.Column():
                    rr = result_area("restore")

        with gr.Tab("Outpaint"):
            with gr.Row():
                with gr.Column():
                    o_image = gr.File(label="Image file", type="filepath", elem_id="outpaint-image")
                    o_preview = gr.Image(label="Image", interactive=False, format="png")
                    with gr.Row():
                        sides = {d: gr.Number(value=0, precision=0, label=f"{d} (px)", minimum=0)
                                 for d in ("left", "right", "up", "down")}
                    with gr.Row():
                        fill = gr.Radio(list(FILLS), value=O.fill, label="Fill")
                        overlap = gr.Number(value=O.overlap, precision=0, label="Overlap")
                        max_step = gr.Number(value=O.max_step, precision=0, label="Max step")
                    oc = sampling_controls("outpaint", models, loras, model, outpaint=True)
                    run_o = gr.Button("Run", variant="primary", elem_id="outpaint-run")
                with gr.Column():
                    ro = result_area("outpaint")

        r_keys, o_keys = list(rc), list(oc)

        @readable
        def on_image(path):
            if not path:
                return None
            return {"background": handlers.load_preview(path), "layers": [], "composite": None}

        @readable
        def do_detect(path, edited, model):
            value, note = handlers.detect_damage(detectors, path, (edited or {}).get("layers"), model,
                                                 device=server["device"], colour=BRUSH_RGB)
            gr.Info(note)
            return value

        @readable
        def on_outpaint_image(path):
            return handlers.load_preview(path) if path else None

        @readable
        def do_restore(path, mask_path, edited, mode, *values, progress=gr.Progress(track_tqdm=True)):
            progress(0, desc="preparing (a model not used before loads first)")
            layers = (edited or {}).get("layers")
            run = handlers.restore(cache, output_dir, path, mask_path, layers, mask_mode=mode,
                                   **dict(zip(r_keys, values)), **server)
            return show(run)

        @readable
        def do_outpaint(path, *values, progress=gr.Progress(track_tqdm=True)):
            progress(0, desc="preparing (a model not used before loads first)")
            n = len(sides) + 3
            side_values, (fill_v, overlap_v, step_v), rest = values[:4], values[4:n], values[n:]
            run = handlers.outpaint(cache, output_dir, path, **dict(zip(sides, side_values)), fill=fill_v,
                                    overlap=overlap_v, max_step=step_v, **dict(zip(o_keys, rest)), **server)
            return show(run)

        image.change(on_image, image, editor)
        detect_r.click(do_detect, [image, editor, detector], editor, concurrency_limit=1, concurrency_id="engine")
        o_image.change(on_outpaint_image, o_image, o_preview)
        outs_r = [rr[k] for k in ("status", "gallery", "slider", "collage", "files", "state")]
        outs_o = [ro[k] for k in ("status", "gallery", "slider", "collage", "files", "state")]
        # One model, one device: every run (either tab) waits its turn in one queue.
        run_r.click(do_restore, [image, mask, editor, mask_mode, *rc.values()], outs_r,
                    concurrency_limit=1, concurrency_id="engine")
        run_o.click(do_outpaint, [o_image, *sides.values(), fill, overlap, max_step, *oc.values()], outs_o,
                    concurrency_limit=1, concurrency_id="engine")
        rr["gallery"].select(select, rr["state"], rr["slider"])
        ro["gallery"].select(select, ro["state"], ro["slider"])
    return app


def launch(app: gr.Blocks, host: str, port: int, output_dir, block: bool = True):
    """Serve ``app`` on ``host:port`` (requests one at a time); the run folders under ``output_dir`` are
    the only local files it serves besides gradio's own uploads."""
    os.makedirs(output_dir, exist_ok=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up probes of the local server
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],  # system fonts: no downloads
                              font_mono=["ui-monospace", "monospace"])
    app.queue(default_concurrency_limit=1)
    return app.launch(server_name=host, server_port=port, allowed_paths=[str(output_dir)], ssr_mode=False,
                      prevent_thread_lock=not block, show_error=False, quiet=not block, footer_links=[], theme=theme)
