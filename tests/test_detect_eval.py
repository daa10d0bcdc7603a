"""``inpaint-kit eval-detect``: every kind, the model's held-out setting, labelled pairs, clean photos and
real photos are scored for every model on the very same images, and written as JSON."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from inpaint_kit.cli import main


def test_eval_detect_reports_every_set_for_every_model(tmp_path, capsys):
    from inpaint_kit.detect.network import build, save_detector

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        y, x = np.mgrid[0:72, 0:80]
        img = 100 + 50 * np.sin(x / (7.0 + k))[..., None] + rng.normal(0, 4, (72, 80, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(photos / f"p{k}.png")
    net = build("tiny", seed=0)
    net.config.extra = {"hold_out": "kind:hair"}
    model = save_detector(tmp_path / "det", net)
    out = tmp_path / "counts.json"
    code = main(["eval-detect", "--model", "classical", str(model), "--data", str(photos), "--kinds", "scratch,hair",
                 "--per_kind", "1", "--clean", "1", "--scales", "1", "2", "--pairs", str(_pairs(tmp_path)),
                 "--real_clean", str(photos), "--json", str(out), "--device", "cpu"])
    assert code == 0
    table = capsys.readouterr().out
    for row in ("| scratch |", "| hair |", "| all kinds |", "| 2x scratch |", "| 2x all kinds |",
                "held-out setting (kind:hair)", "| clean |", "| clean+grain |", "| 2x clean+grain |", "pairs", "real photos"):
        assert row in table, row
    data = json.loads(out.read_text())
    assert set(data) == {"classical", str(model)}
    # the same images for both models: the same truth pixels in every set they share
    shared = set(data["classical"]) & set(data[str(model)])
    assert all(data["classical"][g]["true"] == data[str(model)][g]["true"] for g in shared if "held-out" not in g)
    assert data["classical"]["2x scratch"]["pixels"] == 4 * data["classical"]["scratch"]["pixels"]


def _pairs(root):
    folder = root / "pairs"
    (folder / "imgs").mkdir(parents=True)
    (folder / "masks").mkdir()
    img = np.full((40, 40, 3), 120, np.uint8)
    img[20, 5:35] = 250
    mask = np.full((40, 40), 255, np.uint8)
    mask[20, 5:35] = 0
    Image.fromarray(img).save(folder / "imgs" / "a.png")
    Image.fromarray(mask).save(folder / "masks" / "a.png")
    return folder


def test_dtype_bf16_says_classical_stays_float32(tmp_path, capsys):
    from inpaint_kit.detect.network import build, save_detector

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(60, 200, (48, 64, 3), dtype=np.uint8)).save(photos / "p.png")
    model = save_detector(tmp_path / "det", build("tiny", seed=0))
    argv = ["eval-detect", "--model", "classical", str(model), "--data", str(photos), "--kinds", "scratch",
            "--per_kind", "1", "--clean", "0", "--device", "cpu", "--dtype", "bf16"]
    assert main(argv) == 0
    assert "--dtype bf16 applies to the network detectors; classical runs in float32" in capsys.readouterr().err
    assert main([a for a in argv if a != "classical"]) == 0
    assert "classical runs in float32" not in capsys.readouterr().err
