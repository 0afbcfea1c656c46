"""Stage 4.1's control: the no-error teacher matches the teacher in every training parameter but input_sigma."""
from types import SimpleNamespace

import mlflow
import pytest
from click.testing import CliRunner

from distill.errors import DistillError
from distill.teacher import matched
from entrypoints import ablate, extract, train_teacher
from entrypoints._steps import full_params

TEACHER = dict(  # a train_teacher run as `mlflow run` logs it: the MLproject parameters, arch_*, data and code tags
    data="/data/tiny", preset="cpu", num_layers="0", embed_dim="0", kernel_size="0", use_bn="preset",
    input_sigma="preset", loss="supervised", noise_level="1.0", epochs="1", train_subset="0", snapshots="none",
    batch_size="32", lr="0.001", seed="42", checkpoint="none", arch_num_layers="9", arch_embed_dim="16",
    arch_kernel_size="9", arch_input_sigma="True", arch_use_bn="True", arch_dilation="1", arch_blind_spot="True",
    n_train="96", data_dir="/data/tiny", digest_train="a1", digest_val="b2", digest_test="c3", source_digest="0f1e2d3c")
CONTROL = TEACHER | dict(input_sigma="false", arch_input_sigma="False")
RULE = "it must match the teacher in every training parameter but input_sigma"


def test_the_same_run_but_sigma_matches():
    assert matched.mismatch(TEACHER, TEACHER, "r") is None
    assert matched.mismatch(TEACHER, CONTROL, "r") is None  # input_sigma is the one parameter that may differ


def test_values_are_compared_normalised():
    as_logged_directly = CONTROL | dict(epochs="1.0", lr="1e-3", noise_level="1", seed="42.0", arch_use_bn="true")
    assert matched.mismatch(TEACHER, as_logged_directly, "r") is None
    # the preset is compared through the architecture it resolves to
    explicit = CONTROL | dict(preset="mid", embed_dim="16", num_layers="9")
    assert matched.mismatch(TEACHER, explicit, "r") is None
    # a parameter neither logged is train_teacher's default; one side's default written out is the same
    assert matched.mismatch(TEACHER, {k: v for k, v in CONTROL.items() if k != "train_subset"}, "r") is None


def test_other_epochs_are_named_with_both_values():
    reason = matched.mismatch(TEACHER, CONTROL | {"epochs": "3"}, "abc")
    assert reason == f"no_error_teacher abc: epochs=3 but the teacher's is 1; {RULE}"


def test_another_seed_is_named():
    assert matched.mismatch(TEACHER, CONTROL | {"seed": "7"}, "r").startswith("no_error_teacher r: seed=7 but")


def test_other_code_is_named_as_the_code_version():
    reason = matched.mismatch(TEACHER, CONTROL | {"source_digest": "99999999"}, "r")
    assert reason.startswith("no_error_teacher r: code version source_digest=99999999 but the teacher's is 0f1e2d3c")


@pytest.mark.parametrize("key, value", [
    ("loss", "self_supervised"), ("epochs", "2"), ("train_subset", "64"), ("seed", "0"), ("noise_level", "0.5"),
    ("lr", "0.01"), ("batch_size", "16"), ("arch_embed_dim", "32"), ("arch_num_layers", "7"), ("arch_use_bn", "False"),
    ("arch_kernel_size", "5"), ("arch_dilation", "2"), ("data_dir", "/data/other"), ("digest_train", "ff"),
    ("source_digest", "11111111")])
def test_each_training_parameter_is_checked(key, value):
    """Planted one at a time: a guard that skipped any of them lets that one through and fails here."""
    reason = matched.mismatch(TEACHER, CONTROL | {key: value}, "r")
    assert reason is not None and f" {key}={value} but the teacher's is {TEACHER[key]}; " in reason
    assert matched.mismatch(TEACHER, TEACHER | {key: value}, "r") == reason  # the teacher's own run is no exception


def test_the_first_difference_is_named():
    reason = matched.mismatch(TEACHER, CONTROL | {"seed": "1", "lr": "0.1", "epochs": "4"}, "r")
    assert " epochs=4 " in reason and "seed" not in reason and "lr" not in reason


def test_the_control_is_trained_with_every_training_parameter_but_sigma():
    teacher = TEACHER | dict(preset="mid", train_subset="64", seed="7", lr="0.0003", batch_size="16", epochs="3",
                             noise_level="0.5")
    params = matched.control_params(teacher, "ignored")
    assert params["input_sigma"] == "false" and params["data"] == "/data/tiny"
    assert {k: params[k] for k in matched.TRAINING} == {k: teacher[k] for k in matched.TRAINING}
    assert {k: params[k] for k in matched.SETTABLE} == dict(num_layers="9", embed_dim="16", kernel_size="9",
                                                             use_bn="true")
    logged = full_params("train_teacher", params)  # what the launched run logs: it matches the teacher but for sigma
    trained = logged | {k: v for k, v in teacher.items() if k.startswith(("arch_", "digest_"))} | dict(
        arch_input_sigma="False", data_dir=teacher["data_dir"], source_digest=teacher["source_digest"])
    assert matched.mismatch(teacher, trained, "r") is None


def run(params: dict, run_id="c" * 32) -> SimpleNamespace:
    tags = {k: v for k, v in params.items() if k in matched.RECORD_TAGS or k.startswith("digest_")}
    return SimpleNamespace(data=SimpleNamespace(params=params, tags=tags), info=SimpleNamespace(run_id=run_id))


def test_the_control_refuses_what_cannot_match():
    config = {"num_layers": 9, "embed_dim": 16, "kernel_size": 9, "input_sigma": True, "use_bn": True,
              "dilation": 1, "blind_spot": True}
    control = matched.Control(TEACHER, config, "/data/tiny", TEACHER["source_digest"], 1.0, epochs=1, run_id="t")
    assert control.accept(run(CONTROL)) and not control.accept(run(CONTROL | {"lr": "0.002"}))
    control.check(run(CONTROL))
    with pytest.raises(DistillError, match=r"lr=0.002 but the teacher's is 0.001"):
        control.check(run(CONTROL | {"lr": "0.002"}))
    assert control.params()["epochs"] == "1"
    with pytest.raises(DistillError, match="teacher_epochs=3 but the teacher"):
        matched.Control(TEACHER, config, "/data/tiny", "x", 1.0, epochs=3, run_id="t")
    with pytest.raises(DistillError, match="snapshot after epoch 0"):
        matched.Control(TEACHER, config, "/data/tiny", "x", 1.0, run_id="t", snapshot="0")
    with pytest.raises(DistillError, match="trained by other code"):  # one trained now would differ in code
        matched.Control(TEACHER, config, "/data/tiny", "other", 1.0, run_id="t").params()
    unchecked = matched.Control(None, config, "/data/tiny", "x", 1.0, epochs=2)  # a checkpoint teacher, as before
    unchecked.check(run(CONTROL | {"seed": "7"}))
    assert unchecked.params()["epochs"] == 2 and unchecked.tags["source_digest"] == "x"


def invoke(command, *args) -> str:
    result = CliRunner().invoke(command.main, [str(a) for a in args])
    assert result.exit_code == 0, result.output[-2000:]
    return mlflow.search_runs(search_all_experiments=True, order_by=["attributes.start_time DESC"],
                              output_format="list")[0].info.run_id


@pytest.mark.slow
def test_ablate_refuses_a_no_error_teacher_trained_otherwise(mlflow_store, tiny_data):
    tiny = ("--data", tiny_data, "--batch-size", 16, "--train-subset", 32)
    teacher = invoke(train_teacher, *tiny, "--epochs", 1)
    longer = invoke(train_teacher, *tiny, "--epochs", 2, "--input-sigma", "false")
    features = invoke(extract, "--data", tiny_data, "--teacher", teacher, "--layer", "enc_pre_latent",
                      "--direction", "fwd", "--segments", 8)
    args = ["--data", tiny_data, "--kind", "no_error_teacher", "--features", features]
    result = CliRunner().invoke(ablate.main, [str(a) for a in args + ["--no-error-teacher", longer]])
    assert result.exit_code != 0
    assert f"error: no_error_teacher {longer}: epochs=2 but the teacher's is 1; {RULE}" in result.output
    result = CliRunner().invoke(ablate.main, [str(a) for a in args + ["--teacher-epochs", 2]])
    assert result.exit_code != 0 and "teacher_epochs=2 but the teacher" in result.output
    same = invoke(train_teacher, *tiny, "--epochs", 1, "--input-sigma", "false")
    invoke(train_teacher, *tiny, "--epochs", 1, "--input-sigma", "false", "--seed", 7)  # newer, but another seed
    invoke(ablate, *args, "--teacher-epochs", 1)  # auto takes the one that matches, and the teacher's epochs pass
    (child,) = [r for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
                if r.data.tags.get("kind") == "no_error_teacher" and "mlflow.parentRunId" in r.data.tags
                and r.info.status == "FINISHED"]  # the refused ones ended FAILED
    assert child.data.tags["no_error_teacher_run_id"] == same
