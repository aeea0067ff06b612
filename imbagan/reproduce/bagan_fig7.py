"""BAGAN Fig. 7: the class accuracy of generated minority images (Mariani et al. 2018, §5.1).

Each MNIST class in turn is the minority with 97.5% of its images dropped; a classifier trained on the
whole original training set (BAGAN: ResNet-18) classifies generated images of that class. The figure
gives bars, not numbers, so there is nothing published to put beside ours.
"""

from imbagan.reproduce.spec import Budget, Row, Setting, Spec

SPEC = Spec(
    name="bagan-fig7",
    title="BAGAN Fig. 7: accuracy (%) of generated minority images, MNIST, 97.5% dropped",
    paper="Mariani, Scheidegger, Istrate, Bekas, Malossi: BAGAN: Data Augmentation with Balancing GAN, 2018",
    where="Fig. 7 (§5.1; bars only, no numbers published)",
    metric="class_accuracy",
    settings=tuple(Setting(f"mnist-drop{c}", f"MNIST, class {c} minority",
                           {"dataset": "mnist", "imbalance": "drop", "minority": (c,), "drop": 97.5})
                   for c in range(10)),
    rows=(Row("gan", "GAN (minority only)", method="gan"), Row("acgan", "ACGAN", method="acgan"),
          Row("bagan", "BAGAN", method="bagan"), Row("aggan", "AGGAN (imbagan)", method="aggan"),
          Row("cagan", "CAGAN (imbagan)", method="cagan"), Row("bagan_gp", "BAGAN-GP (imbagan)", method="bagan_gp")),
    budgets={
        "quick": Budget(steps=300, batch_size=32, width=32, eval_epochs=1, eval_width=16, quality_images=200,
                        train={"ae_steps": 100}, measured_steps=True,
                        note="each method's measured budget (bench/converge.py; 300 steps where none is measured), "
                             "width 32; reference CNN 1 epoch"),
        "paper": Budget(steps=5000, batch_size=64, width=64, eval_epochs=15, eval_classifier="resnet18",
                        quality_images=500, note="5,000 GAN steps; reference ResNet-18 (BAGAN §5.1), 15 epochs"),
    },
    repeats=3,
    protocols=("honest",),
    notes=("BAGAN's measure selects nothing on the test split, so its protocol is the honest one; the paper "
           "budget uses its ResNet-18.",),
)
