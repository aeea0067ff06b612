"""Shared fixtures: tiny device-resident data, tiny configs, and isolated runs/cache folders; the slow marks."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from imbagan.batches import DeviceData
from imbagan.config import TrainConfig

# A configuration every method can train on CPU in well under a second per step.
TINY = dict(dataset="digits", imbalance="none", batch_size=8, width=8, latent_dim=16, ae_steps=3, steps=6,
            tick_every=2, sample_every=3, checkpoint_every=3, samples_per_class=4, device="cpu",
            quality_curve="off")  # tests/test_convergence.py turns the quality curve on


@pytest.fixture(scope="session")
def _reference_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("reference")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch, _reference_dir):
    """No test writes into the user's home or the working directory."""
    # The quality curve's reference network is trained once per session (per dataset), not once per test.
    monkeypatch.setenv("IMBAGAN_REFERENCE_DIR", str(_reference_dir))
    monkeypatch.setenv("IMBAGAN_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("IMBAGAN_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.setenv("IMBAGAN_THREADS", "1")  # background workers too: CI has 2 cores, tests share them
    torch.set_num_threads(1)


def make_data(num_classes: int = 3, size: int = 16, channels: int = 1, per_class=(12, 6, 3), seed: int = 0) -> DeviceData:
    """Random images whose brightness depends on the class, so classes are learnable."""
    rng = np.random.default_rng(seed)
    per_class = list(per_class)[:num_classes] + [4] * max(0, num_classes - len(per_class))
    y = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])
    base = (y[:, None, None, None] * 200 // max(1, num_classes - 1)).astype(np.int64)
    x = np.clip(base + rng.integers(0, 55, size=(len(y), channels, size, size)), 0, 255).astype(np.uint8)
    g = torch.Generator().manual_seed(seed)
    return DeviceData(x, y, tuple(f"c{c}" for c in range(num_classes)), torch.device("cpu"), g)


def tiny_config(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


@pytest.fixture
def tiny_data():
    return make_data()


# --- the slow tier ---------------------------------------------------------------------------------
# `make test` runs every test; `make test-fast` (pytest -m "not slow") leaves out the ones marked slow: those
# that start processes (workers, the CLI in a fresh interpreter, job runners), drive the app's pages through
# AppTest, use a browser, or take tens of seconds. Most mark themselves in their file (@pytest.mark.slow, or pytestmark for a whole
# file); the files below are marked from here instead, by test name (a decorator in the file does the same).
_PAGES = "the app's pages through AppTest"
_PROCESS = "a process of its own"
SLOW: dict[str, dict[str, str]] = {
    "test_app_compare_verdict.py": {"test_gan_rows_carry_the_verdict_and_an_old_evaluation_says_it_has_none": _PAGES},
    "test_app_pages.py": dict.fromkeys((
        "test_app_runs_and_switches_to_every_page", "test_data_page_shows_counts_grid_and_the_imbalance_ratio",
        "test_an_impossible_imbalance_is_a_message_not_a_traceback",
        "test_train_on_this_data_hands_the_choice_to_the_train_page",
        "test_data_page_uploads_a_zip_and_uses_it_as_an_image_folder", "test_data_page_refuses_a_zip_that_climbs_out",
        "test_compare_page_has_a_row_per_run_and_condition_and_overlays_curves", "test_taxonomy_tables_filter",
        "test_taxonomy_levels_illustrate_with_the_apps_data", "test_a_method_button_hands_its_preset_to_the_train_page",
        "test_taxonomy_shows_the_latest_quality_table_with_its_budget_and_date",
        "test_taxonomy_says_what_a_verdict_means"), _PAGES),
    "test_app_stumbles.py": dict.fromkeys((
        "test_1_new_run_form_stays_open_when_a_widget_changes", "test_1_a_run_link_opens_the_run_with_the_form_folded",
        "test_2_training_sets_selector_offers_before_and_after_once_the_evaluation_finishes",
        "test_3_the_page_polls_while_the_balanced_set_is_prepared", "test_4_a_running_evaluation_shows_an_eta",
        "test_5_data_choice_reaches_train_opened_from_the_sidebar", "test_7_tsne_plots_name_the_classes_and_the_markers",
        "test_8_after_matrix_waits_for_the_gan_condition", "test_9_home_table_links_to_runs_and_refreshes_while_one_trains",
        "test_9_delete_runs_with_confirmation_and_never_a_running_one", "test_9_delete_an_uploaded_folder_from_home",
        "test_10_missing_mnist_points_at_the_data_folder_field", "test_11_quality_table_and_curves_use_readable_labels",
        "test_12_train_form_hides_fields_that_do_not_apply", "test_13_compare_shows_baselines_once_and_gan_rows_first",
        "test_23_7_run_links_with_a_percent_decode_to_their_name", "test_23_16_a_url_naming_no_run_says_so",
        "test_23_4_no_autoencoder_line_for_a_method_without_one",
        "test_23_8_a_bad_imbalance_ratio_says_why_and_keeps_the_last_good_one",
        "test_23_13_the_train_form_speaks_in_words_not_config_keys",
        "test_23_14_log_counts_axis_ticks_powers_of_ten_and_the_example_names_its_ratio",
        "test_23_9_compare_starts_from_one_dataset_and_shows_no_none", "test_23_5_downloads_do_not_rerun_the_page"),
        _PAGES),
    "test_browser_gate.py": {"test_without_a_browser_the_summary_says_so_loudly": "pytest in a process of its own",
                             "test_without_a_browser_under_ci_the_run_fails": "pytest in a process of its own"},
    "test_cli.py": {"test_bad_input_is_a_sentence_not_a_traceback": _PROCESS},
    "test_convergence.py": dict.fromkeys(("test_train_page_draws_the_convergence_curve_and_what_the_rule_says",
                                          "test_train_form_starts_from_the_measured_budget_and_warns_below_it"), _PAGES),
    "test_cores.py": {"test_a_busy_process_beside_us_is_seen_as_about_one_core": "a busy child process for 5 s"},
    # Both in this process, but long: a whole evaluation (2 seeds per condition, image quality, t-SNE), about 30 s
    # of CPU; and an evaluation that waits runs.STALE_AFTER_S (60 s) for its never-launched 'queued' run to count
    # as failed (a run written as 'stopped' first would take seconds, as in test_start_evaluation_...).
    "test_evaluate.py": {"test_end_to_end_on_a_short_digits_run": "a whole evaluation, about 30 s of CPU",
                         "test_a_run_without_a_checkpoint_is_evaluated_without_the_gan": "a 60 s wait"},
    "test_failures.py": dict.fromkeys(("test_foreground_train_with_bad_data_is_one_line_and_leaves_no_run",
                                       "test_an_impossible_device_is_refused_without_a_traceback",
                                       "test_balance_and_evaluate_with_a_bad_checkpoint_are_one_line",
                                       "test_evaluate_on_an_impossible_device_is_one_line"), _PROCESS),
    "test_fidelity.py": {"test_train_page_applies_the_acgan_preset": _PAGES},
    "test_locking.py": dict.fromkeys((
        "test_a_frozen_worker_that_holds_its_run_is_not_responding_not_failed",
        "test_two_resumes_at_the_same_instant_launch_one_worker", "test_a_second_worker_on_a_running_run_refuses_in_one_line",
        "test_runs_beyond_the_cap_wait_queued_with_their_place_and_start_when_a_slot_frees",
        "test_a_queued_run_can_be_stopped", "test_sigterm_during_start_up_leaves_the_run_stopped"), "worker processes"),
    "test_no_torch.py": {"test_no_page_imports_torch": "each page in a process of its own"},
    "test_reproduce_verdict.py": {"test_a_gan_row_is_judged_against_cn_and_the_best_cheap_fix": _PAGES},
    "test_safety.py": dict.fromkeys((
        "test_data_page_refuses_a_folder_outside_the_allowed_roots_quickly",
        "test_train_page_cannot_launch_on_a_folder_outside_the_allowed_roots",
        "test_data_page_preview_of_a_symlink_loop_returns_within_seconds",
        "test_data_page_shows_a_bad_zip_as_one_sentence", "test_pages_survive_an_unreadable_run"), _PAGES),
    "test_structure.py": {"test_config_catalog_and_run_files_import_without_torch": _PROCESS},
}


def pytest_collection_modifyitems(config, items):
    checked = set()
    for item in items:
        names = SLOW.get(item.path.name)
        if not names:
            continue
        if item.path.name not in checked:  # a renamed test must not drop silently into the fast tier
            checked.add(item.path.name)
            gone = sorted(n for n in names if not hasattr(item.module, n))
            if gone:
                raise pytest.UsageError(f"tests/conftest.py's SLOW names tests that {item.path.name} lacks: {gone}")
        if item.originalname in names:
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    """A skipped browser test is easy to miss as one 's' among many: say it loudly at the end."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "test_browser.py" in str(r.nodeid)]
    if not skipped:
        return
    reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else str(skipped[0].longrepr)
    terminalreporter.write_sep("!", "BROWSER TEST SKIPPED", red=True, bold=True)
    terminalreporter.write_line(f"The end-to-end browser test did not run: {reason.removeprefix('Skipped: ')}", red=True)
    terminalreporter.write_line("The app was NOT checked in a real browser. With the CI environment variable set, "
                                "this fails the run.", red=True)
    terminalreporter.write_sep("!", red=True, bold=True)


def wait_for(pred, timeout: float = 120.0, every: float = 0.1):
    """Poll ``pred`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError("timed out")


def load_bench(name: str):
    """A script under bench/ (not a package) as a module, for the tests of its helpers."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
