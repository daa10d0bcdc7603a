"""inpaint-kit: diffusion inpainting for restoration (diffusers pipelines and a small from-scratch DDPM)."""

__version__ = "0.1.0"
