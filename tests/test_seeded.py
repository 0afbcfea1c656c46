"""The seeded arms: each teacher arm read at its own cell chosen on validation, students paired with teacher seeds,
and the seeded answer judged from two-level intervals (planted predictions)."""
import numpy as np
import pandas as pd
import pytest

from distill import confirm
from distill.confirm import LEAK, LEAK_FREE, Readings
from distill.criteria import FAIL, PASS, UNDECIDED
from entrypoints import _seeded


def plan(**students):
    return _seeded.scale_plan(dict(n_train=96, n_val=32, n_test=32, preset="cpu", loss="supervised",
                                   teacher_epochs=1, student_epochs=1),
                              2, dict(layer="enc_1,enc_2", pooling="global_mean,seg_mean_K16"), "val", 16)


class FakeSteps:
    """Records each step and returns its name as the run id."""

    def __init__(self):
        self.calls = []

    def __call__(self, name, entry, reuse=True, tags=None, **params):
        self.calls.append((name, entry, params))
        return name

    def concurrently(self, *calls):
        return [call() for call in calls]


def test_each_teacher_reads_its_own_best_cell_on_validation(tiny_data, monkeypatch):
    """Planted grids: the teacher's validation picks enc_2, the no-error teacher's enc_1 (and their test columns
    point the other way): each arm is read at its own cell, and 4.1 also at the teacher's."""
    def grid(table_path, run_ids):
        best_val = "enc_1" if "no_error" in run_ids[0] else "enc_2"
        return pd.DataFrame({"layer": ["enc_1", "enc_2"], "pooling": "seg_mean_K16", "head": "ridge",
                             "val_r2_log_g": [0.5, 0.1] if best_val == "enc_1" else [0.1, 0.5],
                             "test_r2_log_g": [0.1, 0.5] if best_val == "enc_1" else [0.5, 0.1]})
    monkeypatch.setattr(_seeded.mlflow, "load_table", grid)
    steps = FakeSteps()
    arms = _seeded.SeededArms(steps, plan(), {LEAK: str(tiny_data), LEAK_FREE: None})
    arms.teacher_arm("teacher", LEAK, True, 1)
    arms.teacher_arm("no_error_teacher", LEAK, False, 1)
    [call() for call in arms.at_teacher_cells()]
    assert arms.cells["teacher", 1][1] == "enc_2" and arms.cells["no_error_teacher", 1][1] == "enc_1"
    reads = {name: params for name, entry, params in steps.calls if name.startswith("read_")}
    assert reads["read_no_error_teacher_untrained_s1"]["layer"] == "enc_1"
    assert reads["read_no_error_at_teacher_cell_s1"]["layer"] == "enc_2"
    trained = {name: params for name, entry, params in steps.calls if entry == "train_teacher"}
    assert trained["teacher_s1"] | {"input_sigma": "x"} == trained["no_error_teacher_s1"] | {"input_sigma": "x"}
    assert trained["no_error_teacher_s1"]["input_sigma"] == "false"  # matched in every parameter but sigma


def test_students_pair_with_teacher_seeds_and_each_architecture_has_a_supervised_twin(tiny_data):
    steps = FakeSteps()
    arms = _seeded.SeededArms(steps, plan(), {LEAK: str(tiny_data)})
    arms.cells = {("teacher", 1): ("f1", "enc_1", "global_mean"), ("teacher", 2): ("f2", "enc_2", "seg_mean_K16")}
    [call() for call in arms.students()]
    runs = {name: params for name, entry, params in steps.calls}
    assert set(runs) == {f"{a}_{k}_s{s}" for a in ("mlp", "starnet") for k in ("distilled", "supervised")
                         for s in (1, 2)} | {"label_free_s1", "label_free_s2"}
    assert runs["starnet_distilled_s2"]["features"] == "f2" and runs["starnet_distilled_s2"]["lambda_z"] == 1
    assert runs["starnet_supervised_s2"]["lambda_z"] == 0 and runs["starnet_supervised_s2"]["seed"] == 2
    assert runs["label_free_s1"]["lambda_y"] == 0 and runs["label_free_s1"]["student"] == "mlp"


def readings(rng, n=600, leak_free_edge=0.0):
    """Planted: the teacher reads more than raw flux, the leak-free teacher does not; starnet strongest on
    validation, where distillation helps it; mlp distillation ties."""
    y = rng.uniform(1, 5, n)
    r = Readings(y={LEAK: y, LEAK_FREE: y})
    noisy = lambda sd: y + rng.normal(0, sd, n)  # noqa: E731
    r.add("raw", LEAK, noisy(0.9))
    r.add("leak_free_raw", LEAK_FREE, noisy(0.9))
    for _ in range(2):
        r.add("teacher", LEAK, noisy(0.6))
        r.add("leak_free_teacher", LEAK_FREE, noisy(0.9 - leak_free_edge))
    for _ in range(3):
        r.add("starnet_distilled", LEAK, noisy(0.5), 0.8)
        r.add("starnet_supervised", LEAK, noisy(0.7), 0.7)
        r.add("mlp_distilled", LEAK, noisy(0.8), 0.5)
        r.add("mlp_supervised", LEAK, noisy(0.8), 0.5)
    return r


def test_the_seeded_answer_leads_with_the_strongest_architecture_and_names_the_leak():
    r = readings(np.random.default_rng(0))
    table = confirm.questions(r, ["mlp", "starnet"])
    verdict = dict(zip(table["question"], table["verdict"]))
    assert verdict["edge: the teacher latent over raw flux"] == PASS
    assert verdict["leak or weight: the latent's edge when sigma carries no flux"] in (UNDECIDED, FAIL)
    assert verdict["distillation on starnet"] == PASS and verdict["distillation on mlp"] == UNDECIDED
    assert confirm.strongest(r, ["mlp", "starnet"]) == "starnet"
    text = confirm.answer(table, ["mlp", "starnet"], "starnet")
    assert text.startswith("On the strongest flux-only reader (starnet") and "it comes from the clean flux" in text
    weight = confirm.answer(confirm.questions(readings(np.random.default_rng(0), leak_free_edge=0.3),
                                              ["mlp", "starnet"]), ["mlp", "starnet"], "starnet")
    assert "sigma helps as a noise weight" in weight


def test_the_strongest_architecture_is_chosen_on_validation_not_test():
    rng = np.random.default_rng(1)
    r = readings(rng)
    r.val["mlp_supervised"] = [0.9, 0.9, 0.9]  # planted: mlp best on validation, though starnet reads more on test
    assert confirm.strongest(r, ["mlp", "starnet"]) == "mlp"


def test_arms_on_different_spectra_are_never_paired():
    r = readings(np.random.default_rng(2))
    with pytest.raises(ValueError, match="different datasets"):
        confirm.compare(r, "teacher", "leak_free_raw", confirm.EDGE)


def test_seed_runs_are_reused_on_a_second_call(mlflow_store, tiny_data, monkeypatch):
    """Real step bookkeeping with a stand-in child: every seeded step runs once, and a second call reuses each."""
    import mlflow

    from distill import tracking
    from distill.data import open_dataset
    from entrypoints import _steps as steps_module
    client, digests = mlflow.MlflowClient(), open_dataset(tiny_data).summary()

    def fake_execute(entry, params, run_id):
        for k, v in {"source_digest": tracking.source_digest(), **digests}.items():
            if k == "source_digest" or k.startswith("digest_"):
                client.set_tag(run_id, k, v)
        if entry == "probe" and "," in params.get("layer", ""):
            client.log_table(run_id, pd.DataFrame({"layer": ["enc_1", "enc_2"], "pooling": "seg_mean_K16",
                                                   "head": "ridge", "val_r2_log_g": [0.1, 0.2]}),
                             "tables/summary.json")
        client.set_terminated(run_id, "FINISHED")

    monkeypatch.setattr(steps_module, "execute", fake_execute)
    with mlflow.start_run():
        for round_ in range(2):
            steps = steps_module.Steps(False, {})
            arms = _seeded.SeededArms(steps, plan(), {LEAK: str(tiny_data)})
            for seed in (1, 2):
                arms.teacher_arm("teacher", LEAK, True, seed)
            steps.concurrently(*arms.students())
            assert set(steps.how.values()) == ({"ran"} if round_ == 0 else {"reused"})
    assert len(steps.how) == 2 * 5 + 2 * 5  # per teacher seed 5 steps, per student seed 5 runs


def test_the_leak_free_arms_sigma_is_independent_of_the_clean_flux(tmp_path):
    """The same stars simulated twice: with the leak, sigma follows each star's clean flux pixel by pixel; without
    it, sigma is the same for every star of a magnitude, so it carries nothing of the flux."""
    from distill.data import open_dataset
    from distill.simulator.dataset import simulate_dataset

    def arrays(leak):
        simulate_dataset(tmp_path / str(leak), dict(train=2, val=2, test=40), seed=5, workers=1, leak=leak)
        test = open_dataset(tmp_path / str(leak))["test"]
        flux, error = test.read()
        return test.params["log_g"].to_numpy(), np.asarray(flux, float), np.asarray(error, float)

    def median_correlation(flux, error):
        f, e = flux - flux.mean(0), error - error.mean(0)
        spread = (f.std(0) > 0) & (e.std(0) > 1e-9 * error.mean())
        corr = (f * e).mean(0)[spread] / (f.std(0) * e.std(0))[spread]
        return float(np.median(corr)) if spread.any() else 0.0

    (g_leak, flux_leak, err_leak), (g_free, flux_free, err_free) = arrays(True), arrays(False)
    assert np.array_equal(g_leak, g_free) and np.allclose(flux_leak, flux_free)  # the same stars
    assert median_correlation(flux_leak, err_leak) > 0.5
    assert median_correlation(flux_free, err_free) == 0.0
    assert np.ptp(err_free, axis=0).max() <= 1e-6 * err_free.max()


def test_the_report_puts_the_seeded_answer_first_and_a_confirm_report_is_that_alone():
    from distill import seeded_report
    r = readings(np.random.default_rng(3))
    questions = confirm.questions(r, ["mlp", "starnet"])
    arms = pd.DataFrame([confirm.headline(r, arm) for arm in r.runs])
    md, page = "# title\n\n## Answer\n\nx\n\n## Stages and criteria\n", "<html><h1>title</h1><h2>Answer</h2></html>"
    tags = {"scale": "study", "seeded_answer": "the answer"}
    study_md, study_html = seeded_report.compose("title", md, page, tags, questions, arms)
    assert study_md.index("## Seeded answer") < study_md.index("## Stages and criteria")
    assert "exploratory" in study_md and "<h2>Seeded answer</h2>" in study_html
    confirm_md, _ = seeded_report.compose("title", md, page, tags | {"scale": "confirm", "data_seed": "9",
                                                                      "preregistration_digest": "abc"},
                                          questions, arms)
    assert "Stages and criteria" not in confirm_md and "digest abc, data seed 9" in confirm_md
    assert "distillation on starnet" in confirm_md and "two-level bootstrap" in confirm_md
