"""Why images that look right can fail to teach: how far a run's generated images of a class sit from real ones.

    python bench/domain_gap.py RUN_DIR --cls 9                 # a trained run (any method), one modelled class
    python bench/domain_gap.py RUN_DIR --cls 9 --out bench/results/domain-gap-mnist-step-ir100-gan.md

Written for a puzzle of issue 21: on MNIST step IR 100, `gan`'s row for digit 9 is recognised by the reference
classifier (class accuracy 0.90, domain FID 1.05), yet the classifier trained on the set topped up with those
images recalled almost none of the test split's 9s. The script measures, on the run's own images of ``--cls``
against that class's real images (the training split: those the run saw, and the rest that the imbalance
removed; the test split only for the recall):

1. pixel statistics: the share of exactly-black pixels and the mean of the dark ones (the background floor);
2. memorisation: the mean distance from each generated image to its nearest training image of the class,
   against the same for the test split's images;
3. a linear real-versus-generated probe on raw pixels (5-fold accuracy; 0.5 = indistinguishable);
4. the evaluation's classifier (imbagan.classifiers.fit, ``--width``, ``--steps``), trained on the run's
   imbalanced training set with ``--cls`` topped up to the largest class by the run's images, as generated
   and with their background floor (pixels below ``--floor``) set to black; the test recall of ``--cls`` for
   each, over ``--seeds`` classifier seeds. Only ``--cls`` is topped up, so the difference is the floor's.

Nothing is selected on the test split: it is read once per classifier, for the recall printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model, load_average  # noqa: E402


def pixel_stats(x: np.ndarray) -> dict:
    """uint8 images (N, C, H, W): share of pixels exactly 0, mean of the dark ones (< 64) in [0, 1], ink share."""
    f = x.astype(np.float32) / 255
    dark = f[f < 0.25]
    return {"n": len(x), "black": float((x == 0).mean()), "floor": float(dark.mean()) if dark.size else float("nan"),
            "ink": float((f > 0.5).mean())}


def nearest(a: np.ndarray, b: np.ndarray) -> float:
    """Mean L2 distance (pixels in [0, 1]) from each image of ``a`` to its nearest image in ``b``."""
    import torch

    ta = torch.tensor(a.reshape(len(a), -1), dtype=torch.float32) / 255
    tb = torch.tensor(b.reshape(len(b), -1), dtype=torch.float32) / 255
    return float(torch.cdist(ta, tb).min(1).values.mean())


def probe(real: np.ndarray, fake: np.ndarray, n: int, seed: int = 0) -> float:
    """5-fold accuracy of a logistic regression telling ``n`` real images from ``n`` generated ones, on pixels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(seed)
    n = min(n, len(real), len(fake))
    r, f = real[rng.permutation(len(real))[:n]], fake[:n]
    x = np.concatenate([r, f]).reshape(2 * n, -1).astype(np.float32) / 255
    y = np.r_[np.zeros(n), np.ones(n)]
    folds = min(5, n)
    return float(cross_val_score(LogisticRegression(max_iter=300, C=0.1), x, y, cv=folds).mean())


def floored(x: np.ndarray, floor: float) -> np.ndarray:
    """The images with every pixel below ``floor`` (in [0, 1]) set to black."""
    return np.where(x < round(floor * 255), 0, x).astype(np.uint8)


def recall_after_topup(train_x, train_y, test_x, test_y, cls: int, fake: np.ndarray, num_classes: int, *,
                       width: int, steps: int, seed: int) -> tuple[float, list[int]]:
    """Test recall of ``cls`` for the evaluation's CNN trained on the training set with ``cls`` topped up to the
    largest class from ``fake``, and what the test images of ``cls`` were predicted as (counts per class)."""
    import torch

    from imbagan import classifiers, trainsets

    x, y, _ = trainsets.gan_topup(train_x, train_y, {cls: fake}, 1.0)  # the evaluation's "gan" set, this class only
    x, y = torch.tensor(x), torch.tensor(y)
    m = classifiers.fit(x, y, num_classes, arch="cnn", width=width, steps=steps, batch_size=64, lr=1e-3, seed=seed)
    m.eval()
    p = classifiers.predict(m, torch.tensor(test_x[test_y == cls]))
    return float((p == cls).float().mean()), torch.bincount(p, minlength=num_classes).tolist()


def measure(run: Path, cls: int, *, floor: float = 0.1, seeds: int = 2, width: int = 16, steps: int = 700,
            probe_n: int = 2000, log=print) -> dict:
    import torch

    from imbagan import generate, splits

    cfg, method, data = generate.load_trained(run, torch.device("cpu"))
    if cls not in method.classes_modeled:
        raise SystemExit(f"{run.name}: its {cfg.method} models classes {list(method.classes_modeled)}, not {cls}.")
    train, kept = splits.load_split(cfg, "train")
    test, _ = splits.load_split(cfg, "test")
    full = splits.full_set(cfg, kept)
    need = int(np.bincount(train.y).max() - (train.y == cls).sum())
    fake = generate.draw(method, cls, max(need, probe_n), generate.noise_generator(cfg.seed, data.device)).cpu().numpy()
    seen, allreal, testc = train.x[train.y == cls], full.x[full.y == cls], test.x[test.y == cls]
    out = {"run": run.name, "method": cfg.method, "dataset": cfg.dataset, "cls": cls, "class_name": train.classes[cls],
           "stats": {"seen by the run": pixel_stats(seen), "all training images": pixel_stats(allreal),
                     "test split": pixel_stats(testc), "generated": pixel_stats(fake),
                     f"generated, floor < {floor:g} set to 0": pixel_stats(floored(fake, floor))},
           "nn_fake_to_seen": nearest(fake[:2000], seen), "nn_test_to_seen": nearest(testc, seen),
           "probe": probe(allreal, fake, probe_n), "probe_floored": probe(allreal, floored(fake, floor), probe_n),
           "recall": {}, "floor": floor, "width": width, "steps": steps, "topped_up": need}
    log(f"# {run.name}: {cfg.method} on {cfg.dataset}, class {train.classes[cls]}: {len(seen)} real images seen, "
        f"{need} generated to top it up")
    for name, f in (("as generated", fake[:need]), (f"floor < {floor:g} set to 0", floored(fake[:need], floor))):
        vals = []
        for s in range(seeds):
            r, pred = recall_after_topup(train.x, train.y, test.x, test.y, cls, f, len(train.classes), width=width,
                                         steps=steps, seed=s)
            vals.append(r)
            log(f"  {name}, classifier seed {s}: test recall of {train.classes[cls]} {r:.3f}; predicted as {pred}")
        out["recall"][name] = vals
    return out


def report(m: dict, head: str) -> str:
    lines = [f"<!-- {head} -->", f"# Domain gap: {m['method']}'s images of {m['class_name']} ({m['dataset']}, run "
             f"{m['run']})", "", "| images | n | share exactly black | background floor (mean of pixels < 0.25) | "
             "ink share (> 0.5) |", "|---|---|---|---|---|"]
    for k, s in m["stats"].items():
        lines.append(f"| {k} | {s['n']} | {s['black']:.3f} | {s['floor']:.4f} | {s['ink']:.3f} |")
    lines += ["", f"Nearest training image of the class the run saw: {m['nn_fake_to_seen']:.2f} from a generated "
              f"image, {m['nn_test_to_seen']:.2f} from a test image (mean L2 on [0, 1] pixels).",
              f"A linear probe on pixels tells real from generated images with 5-fold accuracy {m['probe']:.3f} "
              f"(0.5: indistinguishable); {m['probe_floored']:.3f} once the floor is set to black.", "",
              f"The evaluation's CNN (width {m['width']}, {m['steps']} steps), trained on the run's imbalanced set with "
              f"{m['class_name']} topped up by {m['topped_up']} generated images; test recall of {m['class_name']}:", "",
              "| generated images | recall per classifier seed | mean |", "|---|---|---|"]
    for k, v in m["recall"].items():
        lines.append(f"| {k} | {' '.join(f'{r:.3f}' for r in v)} | {np.mean(v):.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a trained run's folder")
    ap.add_argument("--cls", type=int, required=True, help="a class the run's method models (its label index)")
    ap.add_argument("--floor", type=float, default=0.1, help="pixels below this (in [0, 1]) count as background")
    ap.add_argument("--seeds", type=int, default=2, help="classifier seeds per variant")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--probe-n", type=int, default=2000, help="real and generated images each in the probe")
    ap.add_argument("--out", default=None, help="write the report here (markdown)")
    a = ap.parse_args()
    os.environ.setdefault("IMBAGAN_THREADS", "1")
    import torch

    torch.set_num_threads(max(1, int(os.environ["IMBAGAN_THREADS"])))
    start = load_average()
    t = time.perf_counter()
    m = measure(Path(a.run), a.cls, floor=a.floor, seeds=a.seeds, width=a.width, steps=a.steps, probe_n=a.probe_n)
    head = (f"python bench/domain_gap.py {a.run} --cls {a.cls}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, CPU, "
            f"{time.perf_counter() - t:.0f} s, load average {start} -> {load_average()}")
    text = report(m, head)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
