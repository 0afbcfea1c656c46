"""The whole research plan in one command: each step a child run (reused when nothing changed), then the report.

    mlflow run . -e main --env-manager local                                   # demo scale, built-in simulator
    mlflow run . -e main -P scale=study --env-manager local                    # 16k / 1k / 1k, mid teacher
    mlflow run . -e main -P scale=paper --env-manager local                    # 100k / 1k / 1k, paper teacher
    mlflow run . -e main -P scale=confirm --env-manager local                  # configs/confirm.yaml, sealed
    mlflow run . -e main -P scale=study -P seeds=3 --env-manager local         # every trained arm at 3 seeds
    mlflow run . -e main -P data=/path/to/pfsspec -P teacher=/path/to/model.ckpt --env-manager local

A step is reused when a FINISHED run of the same entry point exists with the same parameters
(compared as strings; upstream run ids are parameters), the same code (``source_digest``: any edit, committed or
not, is a miss) and the same data digests; ``force=true`` recomputes everything.
"""
from functools import partial
from pathlib import Path

import click
import mlflow

from distill import ablations, registry, report_dir, tracking
from distill.ceiling import check_simulated
from distill.data import open_dataset
from distill.errors import DistillError
from distill.features.pooling import check_segments, segment_count
from distill.peers import PEERS
from distill.teacher import study
from entrypoints import _confirm, _seeded
from entrypoints import _options as opt
from entrypoints._cli import one_line_errors
from entrypoints._steps import Steps

NOISE_LEVELS = ",".join(f"{v:g}" for v in ablations.NOISE_LEVELS)
SCALES = {  # sizes, teacher preset, loss and epochs per scale (the loss the reference teacher was trained with)
    "demo": dict(n_train=1500, n_val=500, n_test=1000, preset="cpu", loss="supervised", teacher_epochs=1,
                 student_epochs=8, sizes="1000,0", noise_levels="0,0.5,1,2", fisher_spectra=500, peer_epochs=8,
                 template_spectra=32, segments=16, untrained_control=False),
    "study": dict(n_train=16_000, n_val=1000, n_test=1000, preset="mid", loss="supervised", teacher_epochs=2,
                  student_epochs=3, sizes="1000,4000,0", noise_levels=NOISE_LEVELS, fisher_spectra=0, peer_epochs=30,
                  template_spectra=0, segments=256, untrained_control=True),
    "paper": dict(n_train=100_000, n_val=1000, n_test=1000, preset="paper", loss="supervised", teacher_epochs=20,
                  student_epochs=20, sizes="1000,5000,10000,0", noise_levels=NOISE_LEVELS, fisher_spectra=0,
                  peer_epochs=30, template_spectra=0, segments=16, untrained_control=True),
}
"""The demo fits 15 minutes on 2 CPU cores by training on 1,500 spectra and running fewer points: 3.3 at 1,000 and
1,500 labels, the sweep at four noise levels, the information ceiling from 500 of the 1,000 test spectra, the CNN peer
for 8 epochs and the template fit on the first 32 test spectra, and without the untrained control (the teacher's
network at its initial weights; teacher_study's epoch 0 gives it at any size)."""
GRID = dict(layer="enc_1,enc_2,enc_pre_latent,enc_last", pooling="global_mean,mean_max,seg_mean_K8,seg_mean_K16")
FINE_GRID = dict(layer="enc_0", pooling="seg_mean_K64,seg_mean_K256,seg_mean_K512")  # those up to the stored K
"""The fine grid reads the shallow, full-resolution layers at fine resolution, where the teacher studies found log g
(docs/teacher-study.md). A fine cell is channels x K wide: study stores 256 segments for mid's 32 channels, 8,192
values per layer (cpu: -P segments=512). The grid keeps enc_pre_latent for the reference
figures of docs/research-plan.md; the demo stores K <= 16 to keep its 15 minutes."""
RIDGE_ALPHA = "val"
"""Every step's Ridge penalty, chosen on validation for raw flux, latent and student alike: the plan's 1e-3 was set
for 100k training spectra and costs raw-flux Ridge 0.12 R^2 on the demo's 1,500."""
PCA_DIMS = 32  # Stage 1.3: the chosen latent reduced to this many dimensions (the plan asks 16-128)


@click.command()
@click.option("--scale", default="demo", type=click.Choice([*sorted(SCALES), "confirm"]), show_default=True,
              help="confirm: the pre-registered seeded run of configs/confirm.yaml on fresh, sealed spectra")
@click.option("--data", default="auto", show_default=True,
              help="auto: simulate data/{scale}; or a pfsspec dataset directory")
@click.option("--teacher", default="auto", show_default=True, help="auto: train one; or a checkpoint path")
@click.option("--n-train", default=0, type=click.IntRange(0), show_default=True, help="0: the scale's")
@click.option("--n-val", default=0, type=click.IntRange(0), show_default=True, help="0: the scale's")
@click.option("--n-test", default=0, type=click.IntRange(0), show_default=True, help="0: the scale's")
@click.option("--preset", default="auto", show_default=True, help="teacher preset; auto: the scale's")
@click.option("--teacher-epochs", default=0, type=click.IntRange(0), show_default=True, help="0: the scale's")
@click.option("--student-epochs", default=0, type=click.IntRange(0), show_default=True, help="0: the scale's")
@click.option("--segments", default=0, type=click.IntRange(0), show_default=True,
              help="segment means stored per layer, a power of two; 0: the scale's")
@click.option("--seeds", default=1, type=click.IntRange(1), show_default=True,
              help="2 or more: every trained arm also at this many seeds (exploratory; confirm: the file's)")
@click.option("--force", default=False, type=bool, show_default=True, help="recompute every step")
@opt.executor
@click.option("--out", default="reports/latest", show_default=True,
              help="directory for report.md and report.html: new, empty, or one a report made")
@one_line_errors
def main(scale, data, teacher, n_train, n_val, n_test, preset, teacher_epochs, student_epochs, segments, seeds,
         force, executor, out):
    report_dir.check(out)  # before any work: out= is a new or empty directory, or one a report made
    if scale == "confirm":
        plan, digest = _confirm.check(dict(data=data, teacher=teacher, n_train=n_train, n_val=n_val, n_test=n_test,
                                           preset=preset, teacher_epochs=teacher_epochs, student_epochs=student_epochs,
                                           segments=segments, seeds=seeds - 1))
        with tracking.tracked_run("main", stage="all", mvp="all", scale=scale) as run:
            _confirm.run(steps := Steps(force, {}, executor), plan, digest)
            steps("report", "report", reuse=False, run_id=run.info.run_id, out=Path(out).resolve())
        return
    cfg = dict(SCALES[scale])
    cfg.update({k: v for k, v in dict(n_train=n_train, n_val=n_val, n_test=n_test, teacher_epochs=teacher_epochs,
                                      student_epochs=student_epochs, segments=segments).items() if v})
    check_segments(cfg["segments"])
    if cfg["segments"] < (grid_k := max(map(segment_count, GRID["pooling"].split(",")))):
        raise DistillError(f"segments={cfg['segments']}: the grid reads seg_mean_K{grid_k}, so at least {grid_k}")
    cfg["preset"] = cfg["preset"] if preset == "auto" else preset
    if teacher != "auto" and not Path(teacher).is_file():
        raise DistillError(f"teacher={teacher}: no such checkpoint file")
    teacher = teacher if teacher == "auto" else str(Path(teacher).resolve())
    with tracking.tracked_run("main", stage="all", mvp="all", scale=scale) as run:
        code = tracking.get_run(run.info.run_id).data.tags.get("mlflow.source.git.commit")
        steps = Steps(force, {"mlflow.source.git.commit": code} if code else {}, executor)
        data_dir = str(Path(f"data/{scale}" if data == "auto" else data).resolve())  # children run in the project dir
        if data == "auto":
            steps("simulate", "simulate", reuse=Path(data_dir).exists(), out=data_dir, n_train=cfg["n_train"],
                  n_val=cfg["n_val"], n_test=cfg["n_test"])
        ds = open_dataset(data_dir)
        summary = ds.summary()
        steps.tags |= {k: v for k, v in summary.items() if k.startswith("digest_")}
        tracking.log_dataset(summary, data_dir)
        try:  # the information ceiling and the template fit exist only for the simulator's spectra
            check_simulated(ds["test"])
            simulated = True
        except DistillError as e:
            click.echo(f"no information ceiling, no template fit: {e}", err=True)
            simulated = False
        control = teacher == "auto" and cfg["untrained_control"]  # the same network untrained, read at the same cell
        fine = [p for p in FINE_GRID["pooling"].split(",") if segment_count(p) <= cfg["segments"]]
        layer = ",".join([GRID["layer"]] + [FINE_GRID["layer"]] * bool(fine))
        pooling = ",".join([GRID["pooling"], *fine])
        common = dict(data=data_dir, labels="log_g", alpha=RIDGE_ALPHA)

        def network() -> tuple:
            """The teacher (trained unless given), its features and their probe grid; the denoised flux read."""
            t = teacher
            if t == "auto":  # snapshot 0: the initial weights, for the control
                t = steps("train_teacher", "train_teacher", data=data_dir, preset=cfg["preset"], loss=cfg["loss"],
                          epochs=cfg["teacher_epochs"], **({"snapshots": "0"} if control else {}))
            f = steps("extract", "extract", data=data_dir, teacher=t, denoised="true", layer=layer,
                      segments=cfg["segments"])
            grid_id, _ = steps.concurrently(
                partial(steps, "probe_grid", "probe", features=f, head="ridge,lightgbm", layer=layer, pooling=pooling,
                        **common),
                partial(steps, "probe_denoised", "probe", input="denoised_flux", features=f, head="ridge", **common))
            return t, f, grid_id

        if simulated:  # first: every later probe, student and peer reads its ceiling
            steps("fisher", "fisher", data=data_dir, n_spectra=cfg["fisher_spectra"])
        first = [network, partial(steps, "probe_raw", "probe", input="noisy_flux", head="ridge,lightgbm", **common)]
        first += [partial(steps, f"peer_{peer.name}", "peer", method=peer.name, data=data_dir,
                          **peer.step_params(cfg, len(ds["test"])))  # the field's own estimators
                  for peer in PEERS.values() if simulated or not peer.needs_simulator]
        teacher, features, grid = steps.concurrently(*first)[first.index(network)]
        chosen = study.best_on_validation(mlflow.load_table("tables/summary.json", run_ids=[grid]), "ridge")
        latent = dict(layer=chosen["layer"], pooling=chosen["pooling"])  # the latent every later stage reads
        mlflow.set_tags({f"latent_{k}": v for k, v in latent.items()})
        click.echo(f"latent chosen on validation: {latent['layer']} + {latent['pooling']}", err=True)

        def stage_a_and_b():
            a = steps("decompose_error", "decompose_error", data=data_dir, features=features, alpha=RIDGE_ALPHA,
                      **latent)
            steps("student_residual", "distill_student", features=features, target="residual", residual=a,
                  heads="ridge", epochs=cfg["student_epochs"], **latent, **common)  # Stage B, on A's residual

        def untrained_control():
            untrained = steps("extract_untrained", "extract", data=data_dir, teacher=f"{teacher}@0",
                              layer=latent["layer"], direction="fwd", segments=cfg["segments"])
            steps("probe_untrained", "probe", features=untrained, head="ridge,lightgbm", **latent, **common)

        dims = int(chosen.get("n_features", 2 * PCA_DIMS))  # 1.3: fewer dimensions than the latent has
        student = partial(steps, name="student", entry="distill_student", features=features,
                          epochs=cfg["student_epochs"], **latent, **common)
        later = dict(
            pca=partial(steps, "probe_pca", "probe", features=features, head="ridge", pca=min(PCA_DIMS, dims // 2),
                        **latent, **common),
            stages_a_b=stage_a_and_b,
            student=student,
            plus=partial(student, name="student_plus", input="flux+error"),
            supervised=partial(student, name="supervised_baseline", lambda_z=0),
            label_free=partial(student, name="label_free_student", lambda_y=0, heads="ridge"),  # 3.3: heads see labels
            **({"control": untrained_control} if control else {}))
        ids = dict(zip(later, steps.concurrently(*later.values())))
        student, label_free = ids["student"], ids["label_free"]
        steps("ablate", "ablate", data=data_dir, features=features, student=student, label_free_student=label_free,
              sizes=cfg["sizes"], noise_levels=cfg["noise_levels"], alpha=RIDGE_ALPHA,
              teacher_epochs=cfg["teacher_epochs"], **latent)  # the no-error teacher trains as long as the teacher
        if seeds > 1:
            plan = _seeded.scale_plan(cfg, seeds, dict(layer=layer, pooling=pooling), RIDGE_ALPHA, cfg["segments"])
            leak_free = (_seeded.simulated(steps, f"{data_dir}-leak_free", plan, leak=False)
                         if data == "auto" else None)
            _seeded.log_answer(_seeded.SeededArms(steps, plan, {"leak": data_dir, "leak_free": leak_free}).run(), plan)
        for line in registry.register_main(run.info.run_id):  # distill-teacher, distill-student (docs/operations.md)
            click.echo(line, err=True)
        steps("report", "report", reuse=False, run_id=run.info.run_id, out=Path(out).resolve())


if __name__ == "__main__":
    main()
