"""A Stable Diffusion model named on the command line, opened as a source of UNet weights that can be read
one tensor at a time (so that merging three models never holds three UNets), plus its other parts.

What a name may be and how it is read (the same names ``infer --model`` takes):

* a diffusers folder whose UNet weights are safetensors (one file or shards): streamed with ``safe_open``;
* a single ``.safetensors`` checkpoint in the original layout, with its config folder beside it
  (``<dir>/<stem>/`` or ``<dir>/config/``, the folders ``infer`` looks for): streamed, its UNet keys mapped
  to diffusers' names by diffusers' own converter (:func:`inpaint_kit.ldm_layout.unet_keys_from_ldm`);
* a hub id: its folder in the Hugging Face cache (downloaded first by ``infer``'s loader if missing), as above;
* anything else (``.ckpt`` pickles, read with ``weights_only``; ``.bin`` folders; a single file without a
  config folder): loaded whole by :func:`inpaint_kit.engine.sd.load_pipeline`, the way ``infer`` loads
  ``--model``; its UNet then stays in memory.

The VAE, text encoder and tokenizer always come from ``load_pipeline`` (the whole pipeline, loaded once,
dropped by :meth:`ModelSource.release` once its parts are taken).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import InpaintKitError

UNET_WEIGHTS = "diffusion_pytorch_model.safetensors"
UNET_INDEX = "diffusion_pytorch_model.safetensors.index.json"
# safetensors dtype names -> the names we print
DTYPE_NAMES = {"F32": "fp32", "F16": "fp16", "BF16": "bf16", "F64": "fp64"}


class ModelSource:
    """One model (``flag`` names it in messages: ``--inpaint``, ``--base``, ...). Use as a context manager
    (drops what it loaded). ``keys()``, ``shape(key)``, ``dtype(key)`` come from file headers;
    ``tensor(key)`` reads one UNet weight (diffusers key, stored dtype)."""

    def __init__(self, model: str, flag: str, cache_dir: str | None = None):
        self.model, self.flag, self.cache_dir = str(model), flag, cache_dir
        self.kind = ""  # folder | file | hub
        self.path: Path | None = None  # the folder or file on disk (hub: the cached folder)
        self.config_dir: Path | None = None  # a diffusers folder holding this model's configs
        self.streamed = False  # UNet read from safetensors tensor by tensor (else held in memory)
        self.unet_config: dict = {}
        self._where: dict = {}  # diffusers key -> (safetensors file, key in that file)
        self._header: dict = {}  # diffusers key -> (shape, dtype name), from the files' headers
        self._state: dict | None = None  # in-memory UNet weights (diffusers keys)
        self._pipe = None
        self._open()

    # -- opening ------------------------------------------------------------------------------------

    def _open(self) -> None:
        from .engine.sd import CHECKPOINT_SUFFIXES, _single_file_config

        path = Path(self.model).expanduser()
        if path.is_dir():
            self.kind, self.path = "folder", path
            if not (path / "model_index.json").is_file():
                raise InpaintKitError(f"{self.flag} {path} is a folder but not a diffusers model (no model_index.json)")
            self.config_dir = path
            if not self._stream_folder(path):
                self._load()
        elif path.is_file():
            self.kind, self.path = "file", path
            if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
                raise InpaintKitError(f"{self.flag} {path} is not a model file (expected .safetensors or .ckpt)")
            self.config_dir = _single_file_config(path)
            if not (path.suffix.lower() == ".safetensors" and self.config_dir is not None and self._stream_file(path)):
                self._load()
        else:
            self.kind = "hub"
            folder = self._hub_folder()
            if folder is None:  # not cached: infer's loader downloads it (or says in one line why it cannot)
                self._pipe = self._load_pipeline()
                folder = self._hub_folder()
            if folder is not None:
                self.path = self.config_dir = folder
            if folder is not None and self._stream_folder(folder):
                self._pipe = None  # streamed from the cache; the parts are reloaded from there if needed
            else:
                self._load()
        self.unet_config["in_channels"] = self.in_channels

    def _hub_folder(self) -> Path | None:
        """The hub id's folder in the Hugging Face cache, if it is there (no network)."""
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(self.model, cache_dir=self.cache_dir, local_files_only=True))
        except Exception:  # noqa: BLE001 (not cached, malformed id, ...: the loader reports those)
            return None
        return folder if (folder / "model_index.json").is_file() else None

    def _read_header(self, file: Path) -> dict:
        """{key: (shape, dtype name)} of a safetensors file, from its header (no tensor read)."""
        from safetensors import safe_open

        try:
            with safe_open(str(file), framework="pt") as f:
                return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
        except Exception as e:  # safetensors raises its own error types for broken headers
            raise InpaintKitError(f"{self.flag} {self.model}: {file} is not a readable safetensors file ({e})") from e

    def _read_config(self, folder: Path) -> dict | None:
        file = folder / "unet" / "config.json"
        if not file.is_file():
            return None
        try:
            return json.loads(file.read_text())
        except ValueError as e:
            raise InpaintKitError(f"{self.flag} {self.model}: {file} is not valid JSON ({e})") from e

    def _stream_folder(self, folder: Path) -> bool:
        """Index a diffusers folder's safetensors UNet (single file or shards); False if it has none."""
        unet = folder / "unet"
        if (unet / UNET_WEIGHTS).is_file():
            files = [unet / UNET_WEIGHTS]
        elif (unet / UNET_INDEX).is_file():
            weight_map = json.loads((unet / UNET_INDEX).read_text()).get("weight_map", {})
            files = [unet / name for name in sorted(set(weight_map.values()))]
        else:
            return False
        config = self._read_config(folder)
        if config is None:
            return False
        for file in files:
            for k, info in self._read_header(file).items():
                self._where[k], self._header[k] = (file, k), info
        self.unet_config, self.streamed = config, True
        return True

    def _stream_file(self, file: Path) -> bool:
        """Index an original-layout checkpoint's UNet; its architecture comes from the config folder."""
        from .ldm_layout import unet_keys_from_ldm

        config = self._read_config(self.config_dir)
        if config is None:
            return False
        header = self._read_header(file)
        mapping = unet_keys_from_ldm(header, config["layers_per_block"])
        if not mapping:
            raise InpaintKitError(f"{self.flag} {file} holds no UNet weights (no model.diffusion_model.* keys); "
                                  "it is not a Stable Diffusion checkpoint")
        self._where = {k: (file, ldm) for k, ldm in mapping.items()}
        self._header = {k: header[ldm] for k, ldm in mapping.items()}
        self.unet_config, self.streamed = config, True
        return True

    def _load(self) -> None:
        """Load the whole pipeline the way ``infer`` does; its UNet weights are then held in memory."""
        if self._pipe is None:
            self._pipe = self._load_pipeline()
        self._state = self._pipe.unet.state_dict()
        self.unet_config = dict(self._pipe.unet.config)
        self._where, self.streamed = {}, False

    def _load_pipeline(self):
        from .engine.sd import load_pipeline

        try:
            return load_pipeline(self.model, cache_dir=self.cache_dir)
        except InpaintKitError as e:  # infer's messages name --model; here the flag is another
            raise InpaintKitError(f"{self.flag}: {str(e).replace('--model', self.flag)}") from e

    # -- the UNet -----------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """The UNet's weight names (diffusers keys), sorted."""
        return sorted(self._state if self._state is not None else self._where)

    def shape(self, key: str) -> tuple[int, ...]:
        if self._state is not None:
            return tuple(self._state[key].shape)
        return self._header[key][0]

    def dtype(self, key: str) -> str:
        """Stored dtype of a weight: fp32, fp16, bf16."""
        if self._state is not None:
            name = str(self._state[key].dtype).removeprefix("torch.")
            return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}.get(name, name)
        name = self._header[key][1]
        return DTYPE_NAMES.get(name, name.lower())

    def tensor(self, key: str):
        """One UNet weight as stored (read from disk when streamed)."""
        if self._state is not None:
            return self._state[key]
        from safetensors import safe_open

        # Opened per tensor: safe_open maps the file, and every page read stays in this process's RSS
        # while the mapping lives; reopening costs a header parse (~1 ms) and keeps the peak at one tensor.
        file, k = self._where[key]
        with safe_open(str(file), framework="pt") as f:
            return f.get_tensor(k)

    @property
    def in_channels(self) -> int:
        """Input channels of the UNet as its weights have them (9 for inpainting models, 4 otherwise)."""
        if "conv_in.weight" in (self._state if self._state is not None else self._where):
            return int(self.shape("conv_in.weight")[1])
        return int(self.unet_config.get("in_channels", 4))

    # -- the other parts ----------------------------------------------------------------------------

    def pipeline(self):
        """The model's whole pipeline (loaded once, the way ``infer`` loads ``--model``)."""
        if self._pipe is None:
            self._pipe = self._load_pipeline()
        return self._pipe

    def scheduler(self):
        """The model's scheduler, from its config folder when it has one (no weights loaded)."""
        import diffusers

        file = self.config_dir / "scheduler" / "scheduler_config.json" if self.config_dir else None
        if self._pipe is None and file is not None and file.is_file():
            name = json.loads(file.read_text()).get("_class_name", "")
            cls = getattr(diffusers, name, None)
            if cls is not None:
                return cls.from_pretrained(str(self.config_dir), subfolder="scheduler")
        return self.pipeline().scheduler

    def release(self) -> None:
        """Drop the loaded pipeline (its parts live on where they were taken); an in-memory UNet stays."""
        self._pipe = None

    # -- identity -----------------------------------------------------------------------------------

    def identity(self) -> dict:
        """What the recipe records about this model (see :func:`model_identity`)."""
        return model_identity(self.model, self.kind, self.path)

    def close(self) -> None:
        self._pipe = self._state = None

    def __enter__(self) -> "ModelSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def model_identity(model: str, kind: str, path: Path | None) -> dict:
    """Name, kind (folder | file | hub), absolute path and sha256 of a model: of the file; of a folder, the
    sha256 of its ``sha256sum`` listing (:func:`folder_sha256`); hub ids add the cached revision."""
    info = {"model": str(model), "kind": kind}
    if path is None:
        return info
    if kind != "hub":
        info["path"] = str(Path(path).resolve())
    if Path(path).is_file():
        info["sha256"] = file_sha256(path)
    else:
        info["sha256"] = folder_sha256(path)
        info["sha256_of"] = "folder listing"
        if kind == "hub":
            info["revision"] = Path(path).name  # the snapshot folder is named after the commit
    return info


def describe_model(model: str, cache_dir: str | None = None) -> dict:
    """:func:`model_identity` of a ``--model`` name without loading anything (a hub id: its cached folder,
    if it is in the cache)."""
    path = Path(str(model)).expanduser()
    if path.exists():
        return model_identity(model, "folder" if path.is_dir() else "file", path)
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(str(model), cache_dir=cache_dir, local_files_only=True))
    except Exception:  # noqa: BLE001 (not cached: nothing to hash)
        folder = None
    return model_identity(model, "hub", folder)


def file_sha256(path: str | Path, chunk: int = 1 << 24) -> str:
    """sha256 of a file's bytes (what ``sha256sum`` prints, and what model sites list)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def folder_sha256(folder: str | Path) -> str:
    """sha256 of a folder's listing ``<sha256>  <path>`` (one line per file, paths relative and sorted,
    hidden files left out), i.e. of what ``(cd DIR && find . -type f -not -path '*/.*' -printf '%P\\n' |
    LC_ALL=C sort | xargs sha256sum) | sha256sum`` prints. Symlinks (the hub cache) are followed."""
    folder = Path(folder)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    listing = "".join(f"{file_sha256(folder / rel)}  {rel}\n" for rel in files)
    return hashlib.sha256(listing.encode()).hexdigest()
