"""Preflight: what can be checked before a model loads is checked first, in one line each (exit 2).

Output locations are tried for real (create the folder, write and remove a temporary file), because
permissions, read-only file systems and "a file where a folder should be" all look alike until then.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import OutputError


def _dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a folder we write into (None when it can; it is created if needed)."""
    for parent in (path, *path.parents):  # the first existing ancestor must be a folder
        if parent.exists():
            if not parent.is_dir():
                return "is a file" if parent == path else f"cannot be created: {parent} is a file"
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".inpaint-kit-write-test.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        return f"cannot be written ({e.strerror or e})"
    return None


def check_output_dir(path: str | Path, flag: str = "--output_dir") -> Path:
    """``path`` exists as a folder (created if needed) that accepts new files; else an :class:`OutputError`
    naming it and the fix."""
    path = Path(path)
    problem = _dir_problem(path)
    if problem:
        raise OutputError(f"{flag} {path} {problem}; choose a writable folder")
    return path


def check_output_file(path: str | Path, flag: str = "--output") -> Path:
    """``path`` can be written: not a folder, its folder can be created and written into, and an
    existing file there is replaceable."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file name such as {path / 'result.png'}")
    problem = _dir_problem(path.parent)
    if problem:
        raise OutputError(f"{flag} {path}: its folder {path.parent} {problem}; choose another {flag}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{flag} {path}: the file is read-only; choose another {flag} or make it writable")
    return path
