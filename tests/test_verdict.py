"""The verdict rule on synthetic numbers: one case of each word, the best baseline, the sentence."""

import pytest

from imbagan import verdict as v


def test_each_word_of_the_rule():
    assert v.judge([0.05, 0.06, 0.055])["word"] == "better"        # mean 0.055, se ~0.003
    assert v.judge([-0.05, -0.06, -0.055])["word"] == "worse"
    assert v.judge([0.01, -0.01, 0.004])["word"] == "within noise"
    assert v.judge([0.3])["word"] == "one seed: no spread"
    j = v.judge([0.02, 0.04])
    assert j["diff"] == pytest.approx(0.03) and j["se"] == pytest.approx(0.01)
    assert j["word"] == "better"  # 0.03 > 2 * 0.01


def test_a_difference_just_inside_twice_the_standard_error_is_noise():
    # mean 0.019, se 0.01 -> 0.019 < 0.02
    assert v.judge([0.009, 0.029])["word"] == "within noise"


def test_best_baseline_excludes_gans_the_untreated_set_and_the_ceiling():
    per_seed = {"imbalanced": {"acsa": [0.99, 0.99]}, "full": {"acsa": [1.0, 1.0]},
                "gan": {"acsa": [0.98, 0.98]}, "oversample": {"acsa": [0.90, 0.92]},
                "logit_adjust": {"acsa": [0.95, 0.97]}}
    assert v.best_baseline(per_seed) == "logit_adjust"


def test_verdicts_name_the_best_baseline_with_the_spread():
    per_seed = {"imbalanced": {"acsa": [0.90, 0.91, 0.92], "minority_recall": [0.5, 0.6, 0.55]},
                "logit_adjust": {"acsa": [0.97, 0.98, 0.975], "minority_recall": [0.9, 0.92, 0.91]},
                "gan": {"acsa": [0.93, 0.935, 0.94], "minority_recall": [0.7, 0.72, 0.71]},
                "full": {"acsa": [0.99] * 3, "minority_recall": [0.99] * 3}}
    out = v.verdicts(per_seed)
    assert list(out) == ["gan"]
    g = out["gan"]
    assert g["best_baseline"] == "logit_adjust"
    assert g["vs"]["logit_adjust"]["acsa"]["word"] == "worse"
    assert g["vs"]["imbalanced"]["acsa"]["word"] == "better"
    assert g["vs"]["imbalanced"]["minority_recall"]["diff"] == pytest.approx(0.16)
    assert g["text"].startswith("gan: 4.0 ± ") and "below logit_adjust on ACSA (worse)" in g["text"]
    assert "above imbalanced on ACSA (better)" in g["text"]


def test_spread_uses_the_sample_standard_deviation():
    s = v.spread([1.0, 2.0, 3.0])
    assert s == {"mean": 2.0, "std": 1.0, "n": 3}
    assert v.spread([0.5])["std"] == 0.0


def test_a_zero_difference_reads_level_with():
    per_seed = {"imbalanced": {"acsa": [0.9, 0.9], "minority_recall": [0.5, 0.5]},
                "gan": {"acsa": [0.9, 0.9], "minority_recall": [0.5, 0.5]}}
    assert v.verdicts(per_seed)["gan"]["text"] == "gan: level ± 0.0 with imbalanced on ACSA (within noise)"


def test_a_report_on_a_gan_stopped_short_says_so_and_a_finished_one_says_nothing():
    note = v.unfinished_note({"gan_step": 200, "gan_steps": 2750, "training_state": "stopped"})
    assert "step 200 of the 2,750" in note and "stopped" in note and "unfinished GAN" in note
    assert "failed" in v.unfinished_note({"gan_step": 10, "gan_steps": 50, "training_state": "failed"})
    assert v.unfinished_note({"gan_step": 2750, "gan_steps": 2750, "training_state": "done"}) is None
    # Converged and stopped by the rule before the steps asked: finished.
    assert v.unfinished_note({"gan_step": 1500, "gan_steps": 2750, "training_state": "done"}) is None
    assert v.unfinished_note({}) is None  # a report written before these fields existed
