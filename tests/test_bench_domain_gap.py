"""bench/domain_gap.py: the pixel statistics, the real-versus-generated probe and the floor, on a tiny trained run."""

from __future__ import annotations

import numpy as np
import pytest

from imbagan import runs, train
from tests.conftest import load_bench, tiny_config


def test_pixel_stats_and_floor():
    g = load_bench("domain_gap")
    x = np.zeros((2, 1, 4, 4), dtype=np.uint8)
    x[:, :, 0, 0] = 255  # ink
    x[:, :, 1, 1] = 10  # a faint floor pixel
    s = g.pixel_stats(x)
    assert s["black"] == pytest.approx(14 / 16) and s["ink"] == pytest.approx(1 / 16)
    assert s["floor"] == pytest.approx((10 / 255) / 15)
    f = g.floored(x, 0.1)
    assert f[0, 0, 1, 1] == 0 and f[0, 0, 0, 0] == 255 and g.pixel_stats(f)["black"] == pytest.approx(15 / 16)


def test_probe_tells_apart_only_what_differs():
    g = load_bench("domain_gap")
    rng = np.random.default_rng(0)
    real, other = ((rng.random((2, 200, 1, 8, 8)) > 0.8) * 255).astype(np.uint8)
    assert g.probe(real, other, 200) < 0.6  # two draws of the same kind of image: chance
    fake = np.where(other == 0, 25, other).astype(np.uint8)  # the same kind of image on a faint floor
    assert g.probe(real, fake, 200) > 0.7
    assert g.probe(real, g.floored(fake, 0.1), 200) < 0.6  # the floor was the whole difference


def test_measure_a_trained_run_and_write_its_report(tmp_path):
    g = load_bench("domain_gap")
    d = runs.create(tiny_config(method="gan", steps=4, imbalance="drop"), tmp_path)  # digits 3 and 8 rare
    assert train.train(d, log=lambda s: None) == "done"
    from imbagan.config import TrainConfig
    from imbagan.imbalance import minority_classes
    from imbagan import splits

    cfg = TrainConfig.load(d / "config.json")
    counts = np.bincount(splits.load_split(cfg, "train")[0].y).tolist()
    cls = minority_classes(counts)[0]
    m = g.measure(d, cls, seeds=1, steps=3, probe_n=20, log=lambda s: None)
    assert set(m["recall"]) == {"as generated", "floor < 0.1 set to 0"}
    assert all(0 <= r <= 1 for v in m["recall"].values() for r in v)
    assert 0 <= m["probe"] <= 1 and m["topped_up"] == max(counts) - counts[cls]
    text = g.report(m, "head")
    assert "| generated |" in text and "linear probe" in text
    with pytest.raises(SystemExit, match="not"):
        g.measure(d, max(range(len(counts)), key=counts.__getitem__), seeds=1, steps=1, probe_n=4)
