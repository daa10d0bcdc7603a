"""``inpaint-kit ui``: a local web page (gradio) to paint masks, restore, outpaint and compare candidates."""

from __future__ import annotations

import argparse
import logging

from . import flags

HELP = "Open a local web page to paint repair masks, restore or outpaint, and compare candidates (extra: ui)."

log = logging.getLogger("inpaint_kit")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--model", default="builtin",  # not infer's hub model: the page must start offline
                   help="model loaded at start and selected in the page (others can be picked or typed there)")
    g.add_argument("--host", default="127.0.0.1",
                   help="address to listen on. 127.0.0.1 = this machine only. 0.0.0.0 lets anyone who can reach "
                        "this machine run jobs and read the results: there is no login")
    g.add_argument("--port", type=int, default=7860, help="port to listen on")
    flags.add_output_dir(g, default="outputs/ui", help="every run writes its PNGs into a new sub-folder here")
    g.add_argument("--weights_dir", default="weights", help="folder whose models and LoRAs the page offers")
    flags.add_engine_arguments(p, only=("cache_dir",), into=g)
    flags.add_device(g, dtype=True)


def run(args: argparse.Namespace) -> int:
    from ..errors import InpaintKitError

    if not 0 < args.port < 65536:
        raise InpaintKitError(f"--port {args.port} is not a port number; use 1-65535 (e.g. 7860)")
    from ..engine import check_device

    check_device(args.device)  # one line before anything loads
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise InpaintKitError("the UI needs gradio: pip install -e '.[ui]' (make setup installs it)") from None
    from .. import progress
    from ..inpaint import InferConfig
    from ..ui.app import build_app, launch

    progress.configure(force=True)  # step bars even without a terminal: gradio's track_tqdm shows them
    from ..ui.handlers import EngineCache

    cache = EngineCache()
    # Load the starting model now: a wrong --model fails here in one line, and the first Run is quick.
    cache.get(InferConfig(model=args.model, device=args.device, dtype=args.dtype, cache_dir=args.cache_dir))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("--host %s: the UI is reachable from other machines and has no login", args.host)
    app = build_app(cache, model=args.model, device=args.device, dtype=args.dtype, output_dir=args.output_dir,
                    weights_dir=args.weights_dir, cache_dir=args.cache_dir)
    print(f"inpaint-kit ui: http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    try:
        launch(app, args.host, args.port, args.output_dir)
    except OSError as e:  # gradio's "Cannot find empty port", or the address is not this machine's
        raise InpaintKitError(f"--host {args.host} --port {args.port}: cannot listen there ({str(e).split('.')[0]}); "
                              "pick another --port, or a --host address of this machine") from None
    return 0
