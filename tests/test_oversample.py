"""The oversample condition really trains on the oversampled set (issue 10: "oversample may be a no-op").

On MNIST 5 vs 6 at binary IR 100 (seed 0), oversample once gave exactly the imbalanced classifier's
confusion matrix. These tests would fail if the resampled set never reached the classifier: if the
builder returned the imbalanced set, if step_fit trained on another set than the one built, or if
the batches were drawn by index from the un-oversampled set.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from imbagan import classifiers as clf
from imbagan import conditions, evaluate
from imbagan.data import ImageSet

MAJOR, MINOR = 240, 6  # IR 40


def _images(n: int, label: int, rng: np.random.Generator) -> np.ndarray:
    """16x16 grey images whose brightness overlaps between the classes: the minority is the brighter one."""
    base = rng.uniform(0, 140, size=(n, 1, 1, 1)) + 70 * label
    return np.clip(base + rng.normal(0, 20, size=(n, 1, 16, 16)), 0, 255).astype(np.uint8)


def _context(steps: int) -> conditions.Context:
    rng = np.random.default_rng(0)
    x = np.concatenate([_images(MAJOR, 0, rng), _images(MINOR, 1, rng)])
    y = np.array([0] * MAJOR + [1] * MINOR, dtype=np.int64)
    test = ImageSet(np.concatenate([_images(100, 0, rng), _images(100, 1, rng)]),
                    np.array([0] * 100 + [1] * 100, dtype=np.int64), ("major", "minor"))
    train = ImageSet(x, y, ("major", "minor"))
    ecfg = evaluate.EvalConfig(classifier="cnn", width=8, batch_size=32, lr=3e-3, device="cpu")
    return conditions.Context(run_dir=None, run_cfg=SimpleNamespace(dataset="mnist"), cfg=ecfg,
                            device=torch.device("cpu"), train=train, test=test, full=train, pool={}, steps=steps)


def test_the_oversampled_set_is_balanced_and_made_of_the_minority_images():
    c = _context(steps=1)
    s = conditions.training_set("oversample", c)
    assert np.bincount(s.y).tolist() == [MAJOR, MAJOR]
    minority = {img.tobytes() for img in c.train.x[c.train.y == 1]}
    majority = {img.tobytes() for img in c.train.x[c.train.y == 0]}
    # Every image keeps its own label, and every minority image is used (40 copies each, give or take).
    assert {img.tobytes() for img in s.x[s.y == 1]} == minority
    assert {img.tobytes() for img in s.x[s.y == 0]} == majority


def test_the_oversampled_set_reaches_the_classifier_and_changes_it(monkeypatch):
    """Half of every drawn batch is minority, and the classifier differs from the imbalanced one."""
    steps = 60
    c = _context(steps)
    sets = {name: conditions.training_set(name, c) for name in ("imbalanced", "oversample")}
    seen: list[clf.Job] = []
    real_fit_many = clf.fit_many

    def spy(jobs, *args, **kw):
        seen.extend(jobs)
        return real_fit_many(jobs, *args, **kw)

    monkeypatch.setattr(clf, "fit_many", spy)
    models = evaluate.step_fit(c, sets, {name: [0] for name in sets}, lambda *_: None)
    jobs = {j.name: j for j in seen}
    # The job trains on the set the builder made: same images, same labels, in the same order.
    assert torch.equal(jobs["oversample"].x, torch.from_numpy(sets["oversample"].x))
    assert torch.equal(jobs["oversample"].y, torch.from_numpy(sets["oversample"].y))
    # The batches fit_many draws (the same as fit's) hold the minority at ~1/2, against ~1/41 untreated.
    share = {}
    for name, j in jobs.items():
        order = clf._batch_order(int(j.x.shape[0]), c.cfg.batch_size, steps, j.seed, c.device)
        share[name] = float((j.y[order] == 1).float().mean())
    assert 0.4 < share["oversample"] < 0.6, share
    assert share["imbalanced"] < 0.06, share
    # And the classifiers differ where it matters: the minority images the oversampled set repeats
    # get a higher minority probability from its classifier than from the untreated one.
    xm = torch.from_numpy(c.train.x[c.train.y == 1])
    p = {name: clf.logits(ms[0], xm).softmax(1)[:, 1] for name, ms in models.items()}
    assert p["oversample"].mean() > p["imbalanced"].mean() + 0.2, {k: float(v.mean()) for k, v in p.items()}
    xt = torch.from_numpy(c.test.x)
    assert (clf.predict(models["oversample"][0], xt) != clf.predict(models["imbalanced"][0], xt)).any()


def test_progress_counts_each_classifiers_own_steps_pass_by_pass(monkeypatch):
    """fit_many counts steps on across its passes; the evaluation's progress says which pass, and each
    classifier's step out of its budget (not "step 1,400/1,400" for a 700-step budget)."""
    c = _context(steps=10)
    texts = []

    def fake(jobs, *args, on_report, **kw):
        for step in (1, 10, 11, 20):
            on_report(step, 20, torch.zeros(1))  # two passes of 10 steps
        return [None] * len(jobs)

    monkeypatch.setattr(clf, "fit_many", fake)
    evaluate.step_fit(c, {"imbalanced": conditions.training_set("imbalanced", c)}, {"imbalanced": [0]},
                      lambda text, *_: texts.append(text))
    assert texts == ["1 classifier: pass 1 of 2, step 1/10", "1 classifier: pass 1 of 2, step 10/10",
                     "1 classifier: pass 2 of 2, step 1/10", "1 classifier: pass 2 of 2, step 10/10"]
