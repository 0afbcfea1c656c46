"""Stage 4 and robustness: each ablation a nested child run under one `ablate` parent with the summary table.

    mlflow run . -e ablate -P data=data/sim --env-manager local                       # all five
    mlflow run . -e ablate -P kind=shuffle_labels --env-manager local
    mlflow run . -e ablate -P kind=noise_sweep,sample_efficiency -P student=latest --env-manager local
"""
import click
import mlflow

from distill import ablation, ablations, probe, tracking
from distill.ablation import KINDS, MVP, AblationInputs, AblationSettings, LoadedStudent
from distill.data import LABELS, open_dataset
from distill.device import pick_device
from distill.errors import DistillError, check_choices
from distill.heads import SHARED_HEADS
from entrypoints import _options as opt
from entrypoints import _upstream as upstream
from entrypoints._cli import number_list, one_line_errors, progress_bar, split_list
from entrypoints._outcome import log_outcome


class Upstream:
    """The runs the ablations read: the extract run at the start, the others when an ablation first asks (their ids
    tagged on the asking run)."""

    def __init__(self, data, noise_level, summary, device, refs: dict, teacher_epochs: int):
        self.data, self.noise_level, self.summary, self.extract = data, noise_level, summary, None
        self.device, self.refs, self.teacher_epochs = device, refs, teacher_epochs

    def latent(self, layer: str, pooling: str, direction: str) -> probe.FeatureSet:
        run = upstream.features_run(self.refs["features"], self.data, self.noise_level, self.summary)
        mlflow.set_tag("features_run_id", run.info.run_id)
        local, manifest = upstream.download_features(run, sorted(set(layer.split("+"))))
        self.extract = (run, manifest)
        return probe.latent_features(local, manifest, layer, pooling, direction)

    def teacher(self):
        model, ref = upstream.teacher_of(self.refs["teacher"], self.extract, self.data)
        mlflow.set_tags(ref)
        return model

    def no_error(self, teacher) -> tuple:
        """Found or trained once, the same as the extract run's teacher in every training parameter but sigma
        (``teacher_epochs``, if given, must be the teacher's; it sets only the epochs of one trained for a teacher
        with no train_teacher run)."""
        return upstream.no_error_teacher(self.refs["no_error_teacher"], teacher, self.data, self.noise_level,
                                         self.extract[1], self.teacher_epochs)

    def student(self, label_free: bool) -> LoadedStudent | None:
        ref = self.refs["label_free_student" if label_free else "student"]
        if ref == "none":
            return None
        predictor, run = upstream.student(ref, self.data, self.noise_level, self.device, label_free=label_free)
        return LoadedStudent(predictor, run.data.tags.get("input", "flux"), run.data.params)

    def residual(self, label: str, sizes: dict) -> dict:
        return upstream.residual_target("latest", self.data, label, sizes)

    def ceilings(self, label: str, levels):
        return upstream.ceilings(self.summary, label, levels)


@click.command()
@opt.data
@click.option("--kind", default="all", show_default=True, help=f"all, or a comma list of {', '.join(KINDS)}")
@opt.features
@opt.teacher
@click.option("--student", default="none", show_default=True, help="distill_student run id, latest, or none")
@click.option("--label-free-student", default="none", show_default=True,
              help="sample_efficiency: a distill_student run with lambda_y=0 (run id, latest, or none)")
@click.option("--no-error-teacher", default="auto", show_default=True,
              help="auto (find or train), checkpoint path, or run id")
@click.option("--teacher-epochs", default=0, type=click.IntRange(0), show_default=True,
              help="a no-error teacher's epochs: 0 or the teacher run's own; for a checkpoint teacher, those "
              "trained (0: 8)")
@opt.latent()
@click.option("--heads", "head_names", default="ridge", show_default=True,
              help="comma list; the sweep and curves use the first")
@opt.label
@click.option("--noise-level", default=1.0, type=click.FloatRange(0, opt.MAX_NOISE_LEVEL), show_default=True,
              help="the training noise level")
@click.option("--noise-levels", default=",".join(f"{v:g}" for v in ablations.NOISE_LEVELS), show_default=True)
@click.option("--sizes", default=",".join(map(str, ablations.TRAIN_SIZES)), show_default=True,
              help="0: the whole training set")
@click.option("--false-alarm", default=ablations.FALSE_ALARM, type=click.FloatRange(0, 1, min_open=True),
              show_default=True,
              help="shuffle_labels: the guard's false-alarm rate on an honest pipeline")
@click.option("--shuffles", default=ablations.SHUFFLES, type=click.IntRange(2), show_default=True,
              help="shuffle_labels: label permutations per feature set and head")
@opt.head_settings
@opt.seed
@one_line_errors
def main(data, kind, features, teacher, student, label_free_student, no_error_teacher, teacher_epochs, layer, pooling,
         direction, head_names, label, noise_level, noise_levels, sizes, false_alarm, shuffles, alpha, num_leaves,
         n_estimators, seed):
    kinds, head_list = list(KINDS) if kind == "all" else split_list(kind), split_list(head_names)
    check_choices("kind", kinds, KINDS)
    check_choices("head", head_list, SHARED_HEADS)
    check_choices("label", [label], LABELS)
    if pooling == "attention":
        raise DistillError("pooling=attention is learned with a head; ablations need a fixed pooling")
    settings = AblationSettings(label, tuple(head_list), opt.head_params(alpha, num_leaves, n_estimators, seed),
                                tuple(opt.noise_level_list(noise_levels)),
                                tuple(number_list(sizes, "sizes", int)), false_alarm, shuffles, seed)
    refs = dict(features=features, teacher=teacher, student=student, label_free_student=label_free_student,
                no_error_teacher=no_error_teacher)
    ds, device = open_dataset(data, labels=LABELS), pick_device()
    with tracking.tracked_run("ablate", stage="4", mvp=",".join(MVP[k] for k in kinds), kind=kind):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        sources = Upstream(data, noise_level, summary, device, refs, teacher_epochs)
        inputs = AblationInputs(ds, (layer, pooling, direction), noise_level, device, sources, progress_bar)
        findings = []
        for k in kinds:
            with tracking.tracked_run("ablate", stage="4", mvp=MVP[k], nested=True, kind=k) as child:
                mlflow.set_tag("mlflow.runName", k)
                tracking.log_params({"kind": k, "label": label, "heads": ",".join(head_list), "layer": layer,
                                     "pooling": pooling, "direction": direction, "noise_level": noise_level})
                found = ablation.run(k, inputs, settings)
                log_outcome(found)
            findings.append((k, found, child.info.run_id))
        log_outcome(ablation.summary(findings))


if __name__ == "__main__":
    main()
