"""A spec for tests and a first look: scikit-learn's digits, two classes at IR 5, a few steps."""

from imbagan.reproduce.spec import Budget, Row, Setting, Spec

SPEC = Spec(
    name="tiny",
    title="tiny: digits 0 vs 1 at IR 5 (tests)",
    listed=False,
    paper="none (a smoke test of the machinery)",
    where="—",
    metric="accuracy",
    settings=(Setting("digits-ir5", "digits 0 vs 1, IR 5",
                      {"dataset": "digits", "imbalance": "binary", "minority": (0,), "majority": 1, "ir": 5.0}),),
    rows=(Row("cn", "CN", kind="classifier", condition="imbalanced"),
          Row("acgan", "ACGAN", method="acgan"),
          Row("egan", "E-GAN", kind="published"),
          Row("gan", "minority-only GAN", method="gan")),
    budgets={"quick": Budget(steps=6, batch_size=8, width=8, probe_every=3, eval_epochs=1, eval_width=4,
                             train={"latent_dim": 8}, note="6 steps"),
             "paper": Budget(steps=12, batch_size=8, width=8, probe_every=3, eval_epochs=1, eval_width=4,
                             train={"latent_dim": 8}, note="12 steps")},
    repeats=1,
    published={("cn", "digits-ir5"): 90.0, ("acgan", "digits-ir5"): 95.0, ("egan", "digits-ir5"): 96.0},
    paper_protocol="The best accuracy over checkpoints of D's class head on the test split: test-selected.",
)
