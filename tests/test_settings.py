"""A method's own settings live on its card (``settings``), and a run carries them in ``TrainConfig.options``."""

import json

import pytest

from imbagan import catalog, runs
from imbagan.__main__ import main
from imbagan.config import TrainConfig

# config.json of an acgan run as written before the settings moved to the cards: every method's settings at
# the top level, at TrainConfig's old defaults except the two this run chose.
OLD_ACGAN = {
    "dataset": "digits", "data_root": None, "image_size": None, "channels": None, "imbalance": "step", "ir": 10.0,
    "drop": 95.0, "minority": [3, 8], "majority": 1, "counts": [], "method": "acgan", "steps": 20, "ae_steps": 200,
    "batch_size": 64, "latent_dim": 100, "lr": 0.0002, "beta1": 0.5, "beta2": 0.999, "width": 32,
    "gan_classes": [], "adv_loss": "ls", "acgan_variant": "modified", "lambda_cls": 0.1, "gp_weight": 10.0,
    "n_critic": 5, "aggan_t0": 1000.0, "aggan_alpha": 0.99, "aggan_gamma": 0.2, "cagan_mix_start": 0.5,
    "cagan_d_norm": "batch", "cagan_reg": "zero-gp", "cagan_reg_weight": 1.0, "bagan_gp_variant": "official",
    "aggan_sample_from": "g", "diffaugment": "none", "lecam_weight": 0.0, "tick_every": 25, "sample_every": 100,
    "checkpoint_every": 200, "samples_per_class": 10, "seed": 0, "device": "auto", "precision": "auto",
    "quality_curve": "auto", "stop_when": "steps", "evaluate_after": False}


def test_an_old_config_json_loads_with_its_settings_moved_under_options(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(OLD_ACGAN))
    cfg = TrainConfig.load(tmp_path / "config.json")
    assert cfg.options == {"acgan_variant": "modified", "lambda_cls": 0.1, "adv_loss": "ls", "gp_weight": 10.0,
                           "n_critic": 5}  # acgan's, and none of another method's
    cfg.save(tmp_path / "new.json")
    assert TrainConfig.load(tmp_path / "new.json") == cfg
    assert json.loads((tmp_path / "new.json").read_text())["options"]["adv_loss"] == "ls"
    assert "aggan_t0" not in json.loads((tmp_path / "new.json").read_text())


def test_every_setting_is_checked_against_the_card_and_the_others_are_refused():
    assert TrainConfig(method="cagan").options == catalog.card("cagan").setting_defaults()
    with pytest.raises(ValueError, match="acgan has no setting aggan_t0; its settings: acgan_variant"):
        TrainConfig(method="acgan", options={"aggan_t0": 5.0})
    with pytest.raises(ValueError, match="adv_loss must be one of bce, ls, wgan-gp"):
        TrainConfig.from_dict({"method": "acgan", "adv_loss": "hinge"})
    with pytest.raises(ValueError, match="aggan_alpha must be above 0"):
        TrainConfig.from_dict({"method": "aggan", "aggan_alpha": 0})
    with pytest.raises(ValueError, match="n_critic must be a whole number"):
        TrainConfig.from_dict({"method": "bagan_gp", "n_critic": 2.5})
    with pytest.raises(ValueError, match="cagan_mix_start must be at most 1"):
        TrainConfig.from_dict({"method": "cagan", "cagan_mix_start": 1.5})


def test_replace_names_settings_as_fields_and_keeps_only_the_new_methods():
    cfg = TrainConfig(method="acgan").replace(adv_loss="wgan-gp", n_critic=3)
    assert (cfg.options["adv_loss"], cfg.options["n_critic"]) == ("wgan-gp", 3)
    moved = cfg.replace(method="aggan")
    assert moved.options == catalog.card("aggan").setting_defaults()


def test_methods_that_share_a_setting_name_agree_on_its_type_and_default():
    seen: dict = {}
    for c in catalog.methods().values():
        for name, spec in c.settings.items():
            first = seen.setdefault(name, spec)
            assert type(first["default"]) is type(spec["default"]) and first["default"] == spec["default"], name
            assert first.get("choices") == spec.get("choices"), name


def test_the_cli_refuses_another_methods_setting(tmp_path, capsys):
    assert main(["--runs", str(tmp_path), "train", "--method", "gan", "--adv-loss", "ls"]) == 2
    assert "--adv-loss: not a setting of gan; its settings: gan_classes." in capsys.readouterr().err
    assert not runs.list_runs(tmp_path)  # nothing was created
