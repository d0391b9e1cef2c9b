"""The image path end to end: an ImageNet-R-style folder of generated PNGs, a random tiny
ViT with PROTEUS modules, the runner, and the checker on the resulting run directory."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

import bounds
from bounds.check.cli import main as check_main
from cft.cli import main as cft_main


def _image_folder(root, n_classes=6, per_class=24, size=16, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        (root / f"class{c}").mkdir(parents=True)
        colour = rng.integers(0, 255, 3)
        for i in range(per_class):
            img = np.clip(colour + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / f"class{c}" / f"{i}.png")


def test_tiny_vit_on_image_folder_runs_and_checks(tmp_path, capsys):
    _image_folder(tmp_path / "images")
    out = tmp_path / "run"
    data = json.dumps({"root": str(tmp_path / "images"), "image_size": 16, "n_tasks": 3})
    bb = json.dumps({"image_size": 16, "patch_size": 4, "adapt_layers": 1})
    rc = cft_main(["run", "--preset", "tiny", "--out", str(out), "--quiet",
                   "data.name=imagefolder", f"data.options={data}",
                   "backbone.name=tiny-vit", f"backbone.options={bb}"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tasks_seen"] == 3
    # distinct colours per class: frozen tiny-ViT features already separate the tasks
    assert metrics["summary"]["shared"]["retrieval_last"] > 0.9
    z = np.load(out / "eval" / "step-002" / "test" / "adapted-nll.npz")
    assert z["scores"].shape[1] == 3 and np.isfinite(z["scores"]).all()
    emp, _ = bounds.empirical_error(z["scores"], z["task"])
    assert emp.shape == (3,)
    capsys.readouterr()
    assert check_main([str(out)]) == 0
