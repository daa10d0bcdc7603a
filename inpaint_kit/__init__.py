"""inpaint-kit: diffusion inpainting for restoration (diffusers pipelines and a small from-scratch DDPM).

    from inpaint_kit import InferConfig, load_engine, restore   # see inpaint_kit.api
"""

from .version import __version__

_API = ("InferConfig", "Restoration", "load_engine", "restore")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    # Lazy, so that `import inpaint_kit` (and `inpaint-kit --help`) does not pay for numpy/PIL/torch.
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'inpaint_kit' has no attribute {name!r}")
