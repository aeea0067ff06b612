"""Issue 9 §4: the Streamlit process never imports torch (nor torchvision); it costs seconds per start.

Every page is rendered with AppTest in a fresh interpreter, over a runs folder holding a finished,
evaluated run (written as plain files, the way a worker leaves them), and the interpreter then reports
whether torch got imported. The numpy paths that replace torch in the app (the digits loader, the
grid composer) are checked here against torch's own results.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(r'''
    import json, sys, time
    from pathlib import Path
    import numpy as np
    from streamlit.testing.v1 import AppTest
    from imbagan import runs
    from imbagan.config import TrainConfig
    from PIL import Image

    root = Path(sys.argv[1])
    cfg = TrainConfig(dataset="digits", imbalance="step", ir=10.0, method="bagan", steps=20)
    d = runs.create(cfg, root)
    runs.write_json_atomic(d / "status.json", {"state": "done", "step": 20, "total": 20, "created": time.time(),
                                               "heartbeat": time.time(), "counts": [100] * 9 + [10],
                                               "classes": [str(i) for i in range(10)]})
    (d / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "time": s, "d_loss": 1.0 / s, "g_loss": 2.0,
                                                         "d_fake_acc": 0.5}) + "\n" for s in (5, 10, 20)))
    Image.new("RGB", (80, 170), "grey").save(d / "samples" / "000020.png")
    (d / "checkpoint.pt").write_bytes(b"not read by the pages")
    ev = d / "eval"
    ev.mkdir()
    per_class = [{"precision": 0.9, "recall": 0.9, "f1": 0.9}] * 10
    cond = {"accuracy": 0.9, "acsa": 0.9, "gmean": 0.9, "macro_f1": 0.9, "minority": {"recall": 0.5},
            "per_class": per_class, "confusion": np.eye(10, dtype=int).tolist()}
    runs.write_json_atomic(ev / "status.json", {"state": "done", "progress": 1.0})
    runs.write_json_atomic(ev / "metrics.json", {"conditions": {"imbalanced": cond, "gan": cond, "full": cond},
                                                 "run": {"classes": [str(i) for i in range(10)]}})
    (ev / "quality.csv").write_text("class,class_acc,ssim_gen,ssim_real,nn_ssim_real,fid\n0,0.9,0.3,0.2,0.5,12.5\n")
    np.savez(ev / "tsne.npz", xy_before=np.zeros((20, 2)), xy_after=np.zeros((20, 2)), labels=np.arange(20) % 10,
             kind=np.arange(20) % 3, classes=np.array([str(i) for i in range(10)]))

    at = AppTest.from_file(sys.argv[2], default_timeout=120).run()
    seen = {"home": bool(at.exception)}
    for page in ["pages/data.py", "pages/train.py", "pages/evaluate.py", "pages/compare.py", "pages/taxonomy.py",
                 "pages/home.py"]:
        at.switch_page(page).run()
        seen[page] = [e.value for e in at.exception]
    at.query_params["run"] = d.name
    at.switch_page("pages/train.py").run()
    seen["train ?run="] = [e.value for e in at.exception] + ([] if at.get("image") else ["no grid drawn"])
    at.switch_page("pages/evaluate.py").run()
    seen["evaluate ?run="] = [e.value for e in at.exception] + ([] if at.get("plotly_chart") else ["no charts"])
    print(json.dumps({"exceptions": seen, "torch": sorted(m for m in sys.modules
                                                        if m.split(".")[0] in ("torch", "torchvision"))}))
''')


@pytest.mark.slow  # each page in a process of its own
def test_no_page_imports_torch(tmp_path):
    env_py = sys.executable
    out = subprocess.run([env_py, "-c", SCRIPT, str(tmp_path / "runs"), str(ROOT / "app.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "IMBAGAN_THREADS": "1",
                              "IMBAGAN_RUNS": str(tmp_path / "runs"), "IMBAGAN_DATA": str(tmp_path / "data"),
                              "IMBAGAN_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert not any(report["exceptions"].values()), report["exceptions"]
    assert report["torch"] == [], f"the app's process imported {report['torch'][:5]}"


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_digits_without_torch_match_torchs_resize(size):
    """The digits loader's numpy upscale gives torch's bilinear pixels exactly (whole-number factors)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    from imbagan import data as datasets

    imgs = load_digits().images / 16.0
    ref = F.interpolate(torch.from_numpy(imgs).float()[:, None], size=(size, size), mode="bilinear",
                        align_corners=False)
    ref = (ref * 255).round().clamp(0, 255).to(torch.uint8).numpy()[:, 0]
    mine = datasets._upscale_bilinear(imgs.astype(np.float32), size)
    assert np.array_equal(np.clip(np.round(mine * np.float32(255)), 0, 255).astype(np.uint8), ref)


def test_compose_png_lays_out_like_torchvisions_make_grid():
    import torch
    from torchvision.utils import make_grid

    from imbagan.grids import tile, to_uint8

    g = torch.Generator().manual_seed(0)
    for shape, per_row in [((12, 1, 16, 16), 4), ((10, 3, 32, 32), 3), ((7, 1, 28, 28), 8)]:
        x = torch.rand(*shape, generator=g) * 2 - 1
        ref = make_grid(x.add(1).div(2).clamp(0, 1), nrow=per_row, padding=1, pad_value=1.0)
        ref = ref.mul(255).round().byte().permute(1, 2, 0).numpy()
        assert np.array_equal(tile(to_uint8(x), per_row), ref)
