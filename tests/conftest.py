"""Shared fixtures. ``tiny_model_dir`` is a random-weight SD-inpainting pipeline of the ``tiny`` preset
saved once per test session (about a second); load it with ``--model <dir>`` or ``load_engine(str(dir))``."""

from __future__ import annotations

import pytest
import torch

# The test machines share 2 cores with other jobs; with 2 intra-op threads a busy core makes every
# tiny op wait on the other thread (a tiny UNet call went from 16 ms to 2 s). One thread is faster
# for tiny models everywhere, and the suite stays predictable.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Path to a saved ``tiny`` preset pipeline (seed 0); read-only: tests must not modify it."""
    from inpaint_kit.presets import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny", preset="tiny", seed=0)


def one_line_cli(argv, capsys) -> str:
    """Run ``inpaint-kit argv`` in-process; assert it failed with a usage error (exit 2) on one line, no
    traceback; return that line."""
    from inpaint_kit.cli import main

    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    return err
