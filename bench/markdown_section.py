"""Writing one benchmark's section of docs/benchmarks.md, leaving the other sections alone."""

import re
from pathlib import Path

from inpaint_kit.images import atomic_write


def write_section(path: Path, section: str, body: str) -> None:
    """Replace (or append) the ``section`` heading's block of the markdown file ``path`` with ``body``."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{section}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + block
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
