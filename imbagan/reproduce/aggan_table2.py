"""AGGAN Table 2: accuracy (%) on imbalanced binary classification (Hao et al., BMVC 2020, §5).

Two classes of a dataset, the minority ("positive") keeping majority / IR images (imbagan's
``binary`` profile); the test split keeps both classes whole. Published numbers are means of 5 runs.
"""

from imbagan.reproduce.spec import Budget, Row, Setting, Spec

_DATA = (("mnist", "MNIST 5 vs 6", 5, 6, (97.93, 94.80, 90.27), (98.60, 96.33, 95.53), (99.53, 98.13, 96.60),
          (99.53, 98.33, 97.00), (99.60, 98.47, 97.53)),
         ("fashion_mnist", "Fashion-MNIST sandal vs sneaker", 5, 7, (93.53, 86.73, 80.00), (94.67, 92.07, 88.13),
          (97.80, 96.20, 94.13), (97.67, 96.13, 94.40), (97.80, 96.53, 95.07)),
         ("cifar10", "CIFAR-10 airplane vs automobile", 0, 1, (72.00, 58.85, 57.65), (90.60, 82.75, 80.55),
          (92.00, 84.70, 83.65), (92.10, 86.55, 85.75), (94.00, 89.25, 86.25)))
_IRS = (10, 50, 100)

SPEC = Spec(
    name="aggan-table2",
    title="AGGAN Table 2: accuracy (%) on imbalanced binary classification",
    paper="Hao, Wang, Zhang, Yang: Annealing Genetic GAN for Minority Oversampling, BMVC 2020",
    where="Table 2 (§5.2)",
    metric="accuracy",
    settings=tuple(Setting(f"{ds}-ir{ir}", f"{title}, IR {ir}",
                           {"dataset": ds, "imbalance": "binary", "minority": (mino,), "majority": majo, "ir": float(ir)})
                   for ds, title, mino, majo, *_ in _DATA for ir in _IRS),
    rows=(
        Row("cn", "CN", kind="classifier", condition="imbalanced"),
        Row("os_cn", "Os+CN", kind="classifier", condition="oversample", oversample=True),
        Row("logit_adjust", "logit adjustment (imbagan)", kind="classifier", condition="logit_adjust", paper=False,
            note="post-hoc, tau = 1 (Menon et al. 2021): the CN classifier's logits minus log prior"),
        Row("la_loss", "logit-adjusted loss (imbagan)", kind="classifier", condition="la_loss", paper=False),
        Row("acgan", "ACGAN", method="acgan"),
        Row("egan", "E-GAN", kind="published", note="E-GAN is not implemented in imbagan"),
        Row("aggan", "AGGAN", method="aggan"),
        Row("bagan", "BAGAN (imbagan)", method="bagan"),
        Row("cagan", "CAGAN (imbagan)", method="cagan"),
        Row("bagan_gp", "BAGAN-GP (imbagan)", method="bagan_gp"),
        Row("gan", "minority-only GAN (imbagan)", method="gan"),
        Row("full", "full balanced set (imbagan, ceiling)", kind="classifier", condition="full", paper=False),
    ),
    budgets={
        # A CPU in minutes: narrow networks, a few hundred steps, a short honest classifier.
        "quick": Budget(steps=300, batch_size=50, width=32, probe_every=50, eval_epochs=5, eval_width=16,
                        train={"ae_steps": 100},
                        measured_steps=True,
                        note="each method's measured budget (bench/converge.py; 300 steps where none is measured), "
                             "width 32, D probed every 50 steps; classifier 5 epochs"),
        # The official script: batch 50, 50 epochs over the imbalanced set, D probed every 100 iterations.
        "paper": Budget(steps=0, batch_size=50, width=64, probe_every=100, eval_epochs=15, eval_width=32,
                        train={"epochs": 50},
                        note="official main.py: batch 50, 50 epochs, D probed every 100 iterations; "
                             "classifier 15 epochs"),
    },
    repeats=5,
    published={k: v for ds, _, _, _, *rows in _DATA
               for key, vals in zip(("cn", "os_cn", "acgan", "egan", "aggan"), rows)
               for k, v in ((( key, f"{ds}-ir{ir}"), x) for ir, x in zip(_IRS, vals))},
    paper_protocol=("As HIC-SYSU/AGGAN main.py measures: the accuracy of the GAN discriminator's auxiliary class "
                    "head on the whole test set (D in training mode), every 100 iterations, keeping the maximum: "
                    "the number is selected on the test set. CN / Os+CN: the same discriminator network trained "
                    "as a classifier alone (on class-balanced batches for Os+CN), measured the same way."),
    notes=("Rows marked (imbagan) are not in the paper: imbagan's other methods and the cheap fixes (logit "
           "adjustment, the logit-adjusted loss), under the protocols that apply.",
           "BAGAN-GP's and the minority-only GAN's discriminators have no class head: no paper-protocol number.",
           "The official script probes at iterations 0 and 100 of every epoch; imbagan probes every 100 steps."),
)
