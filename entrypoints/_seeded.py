"""The seeded arms of ``main``: every teacher arm and student at several training seeds, each seed a step (reused
like every step), then the seeded answer (``distill.confirm``) logged on the main run.

``scale=confirm`` runs them from the pre-registration on fresh, sealed spectra; another scale with ``seeds=N``
runs them on its own data (exploratory). Teacher arms: the teacher, the teacher without sigma (matched in every
other training parameter) and the teacher on leak-free spectra (sigma from a flat spectrum); each read at its own
cell (chosen on validation), and its initial weights read at that cell. Students: each architecture distilled
(lambda_z = 1) and supervised (lambda_z = 0), and the label-free student (lambda_y = 0).
"""
import tempfile
from functools import partial
from pathlib import Path

import click
import mlflow
import pandas as pd

from distill import confirm, tracking
from distill.confirm import LEAK, LEAK_FREE, Readings
from distill.data import open_dataset
from distill.preregistration import Plan
from distill.teacher import study

LABEL = "log_g"
COLUMNS = {"probe": "latent_log_g", "raw": "noisy_flux_log_g", "distill_student": "student_log_g"}


class SeededArms:
    """Run (or reuse) every seeded step of ``plan`` on ``data`` ({LEAK: dir, LEAK_FREE: dir or None}) and read
    their test predictions into a ``Readings``."""

    def __init__(self, steps, plan: Plan, data: dict):
        self.steps, self.plan, self.data = steps, plan, {k: v for k, v in data.items() if v}
        self.digests = {k: {t: v for t, v in open_dataset(d).summary().items() if t.startswith("digest_")}
                        for k, d in self.data.items()}
        self.reads = []  # (arm, dataset, run id, entry kind)
        self.cells = {}  # (arm, seed) -> (extract run id, layer, pooling)
        c = plan.candidates
        self.common = dict(labels=LABEL, alpha=c["alpha"], noise_level=plan.data["noise_level"])

    def step(self, name: str, entry: str, dataset: str, **params) -> str:
        return self.steps(name, entry, tags=self.digests[dataset], data=self.data[dataset], **params)

    def run(self) -> Readings:
        """Raw flux, then every teacher arm's seeds, then the students; with Slurm each phase's chains run at once
        (``Steps.concurrently``). The reads keep this order whatever finishes first."""
        self.reads += self.steps.concurrently(*[partial(self.raw, dataset) for dataset in self.data])
        chains = []
        for arm, spec in self.plan.arms.items():
            dataset = LEAK if spec["leak"] else LEAK_FREE
            if dataset not in self.data:
                click.echo(f"{arm}: no {dataset} spectra (the simulator's only), left out", err=True)
                continue
            chains += [partial(self.teacher_arm, arm, dataset, bool(spec["input_sigma"]), seed)
                       for seed in self.plan.teacher_seeds]
        for reads in self.steps.concurrently(*chains):
            self.reads += reads
        self.reads += self.steps.concurrently(*self.at_teacher_cells(), *self.students())
        return self.readings()

    def raw(self, dataset: str) -> tuple:
        run = self.step(f"raw_{dataset}", "probe", dataset, input="noisy_flux", head=self.plan.candidates["head"],
                        **self.common)
        return "raw" if dataset == LEAK else "leak_free_raw", dataset, run, "raw"

    def teacher_arm(self, arm: str, dataset: str, input_sigma: bool, seed: int) -> list:
        """Train, extract the candidates, choose the cell on validation, read the initial weights at it; returns
        the reads."""
        t, c, head = self.plan.teacher, self.plan.candidates, self.plan.candidates["head"]
        run = self.step(f"{arm}_s{seed}", "train_teacher", dataset, preset=t["preset"], loss=t["loss"],
                        epochs=t["epochs"], train_subset=t.get("train_subset", 0), batch_size=t["batch_size"],
                        lr=t["lr"], seed=seed, snapshots="0", noise_level=self.plan.data["noise_level"],
                        input_sigma=str(input_sigma).lower())
        layers = ",".join(c["layers"])
        features = self.step(f"extract_{arm}_s{seed}", "extract", dataset, teacher=run, layer=layers,
                             direction="fwd", segments=c["segments"], noise_level=self.plan.data["noise_level"],
                             denoised=str(arm == "teacher").lower())  # the students' denoised-flux rival, once
        grid = self.step(f"grid_{arm}_s{seed}", "probe", dataset, features=features, layer=layers,
                         pooling=",".join(c["poolings"]), head=head, **self.common)
        cell = study.best_on_validation(mlflow.load_table("tables/summary.json", run_ids=[grid]), head, LABEL)
        self.cells[arm, seed] = (features, cell["layer"], cell["pooling"])
        untrained = self.step(f"extract_{arm}_untrained_s{seed}", "extract", dataset, teacher=f"{run}@0",
                              layer=cell["layer"], direction="fwd", segments=c["segments"],
                              noise_level=self.plan.data["noise_level"])
        return [(arm, dataset, grid, "probe"),
                self.read(f"{arm}_untrained", dataset, untrained, cell["layer"], cell["pooling"], seed)]

    def read(self, arm: str, dataset: str, features: str, layer: str, pooling: str, seed: int) -> tuple:
        run = self.step(f"read_{arm}_s{seed}", "probe", dataset, features=features, layer=layer, pooling=pooling,
                        head=self.plan.candidates["head"], **self.common)
        return arm, dataset, run, "probe"

    def at_teacher_cells(self) -> list:
        """4.1 at the teacher's cell too: the no-error teacher's features read where the teacher's were read (one
        call per seed that has both)."""
        dataset = LEAK if self.plan.arms["no_error_teacher"]["leak"] else LEAK_FREE
        return [partial(self.read, "no_error_at_teacher_cell", dataset, features, *self.cells["teacher", seed][1:],
                        seed)
                for (arm, seed), (features, _, _) in sorted(self.cells.items())
                if arm == "no_error_teacher" and ("teacher", seed) in self.cells]

    def students(self) -> list:
        """One call per student: seed k distils teacher seed k (cycled) at that teacher's cell; its supervised twin
        and the label-free student read the same features."""
        s, seeds = self.plan.students, self.plan.teacher_seeds
        if not any(k[0] == "teacher" for k in self.cells):
            return []
        calls = []
        for i, seed in enumerate(self.plan.student_seeds):
            features, layer, pooling = self.cells["teacher", seeds[i % len(seeds)]]
            common = dict(features=features, layer=layer, pooling=pooling, epochs=s["epochs"],
                          patience=s["patience"], heads=s["heads"], seed=seed, **self.common)
            for arch in s["architectures"]:
                for kind, lambda_z in (("distilled", 1), ("supervised", 0)):
                    calls.append(partial(self.student, f"{arch}_{kind}", student=arch, lambda_z=lambda_z, **common))
            if s.get("label_free"):
                calls.append(partial(self.student, "label_free", student=s["label_free"], lambda_y=0, **common))
        return calls

    def student(self, arm: str, **params) -> tuple:
        return arm, LEAK, self.step(f"{arm}_s{params['seed']}", "distill_student", LEAK, **params), "distill_student"

    def readings(self) -> Readings:
        """Every read step's test predictions (rows in test order), the labels checked equal across runs."""
        work, r = Path(tempfile.mkdtemp(prefix="seeded-")), Readings(y={})
        for arm, dataset, run_id, kind in self.reads:
            frame = pd.read_parquet(tracking.download(run_id, "predictions/test.parquet", str(work / run_id)))
            frame = frame.sort_values("row")
            y = frame[f"y_{LABEL}"].to_numpy(float)
            if dataset in r.y and not (len(y) == len(r.y[dataset]) and (abs(y - r.y[dataset]) < 1e-4).all()):
                raise ValueError(f"{arm} ({run_id}) was scored on other test rows than the first {dataset} run")
            r.y.setdefault(dataset, y)
            val = (tracking.get_run(run_id).data.metrics.get(f"student_val_r2_{LABEL}")
                   if kind == "distill_student" else None)
            r.add(arm, dataset, frame[COLUMNS[kind]].to_numpy(float), val)
        return r


def log_answer(r: Readings, plan: Plan):
    """The seeded tables, metrics and answer on the active (main) run; returns the answer."""
    architectures = plan.students["architectures"]
    table = confirm.questions(r, architectures)
    arms = pd.DataFrame([confirm.headline(r, arm) for arm in r.runs])
    best = confirm.strongest(r, architectures)
    text = confirm.answer(table, architectures, best)
    tracking.log_table(table, "tables/seeded.json")
    tracking.log_table(arms, "tables/seeded_arms.json")
    tracking.log_metrics({f"seeded_{row.arm}_test_r2_{LABEL}{end}": getattr(row, col)
                          for row in arms.itertuples() for end, col in (("", "r2"), ("_lo", "lo"), ("_hi", "hi"),
                                                                         ("_seed_sd", "seed_sd"))})
    tracking.log_metrics({f"seeded_{row.a}_minus_{row.b}_test_r2_{LABEL}{end}": getattr(row, col)
                          for row in table.itertuples() if row.scale == 1
                          for end, col in (("", "value"), ("_lo", "lo"), ("_hi", "hi"), ("_seed_sd", "seed_sd"))})
    mlflow.set_tags({"seeded_strongest_architecture": best, "seeded_answer": text[:5000]})
    click.echo(f"\n{table[['question', 'text']].to_string(index=False, max_colwidth=90)}\n\n{text}", err=True)
    return text


def scale_plan(cfg: dict, seeds: int, grid: dict, alpha: str, segments: int) -> Plan:
    """``main -P seeds=N`` at a scale other than confirm: its teacher, grid and epochs, seeds 1..N everywhere."""
    every = list(range(1, seeds + 1))
    return Plan(data=dict(seed=42, n_train=cfg["n_train"], n_val=cfg["n_val"], n_test=cfg["n_test"], noise_level=1.0),
                teacher=dict(preset=cfg["preset"], loss=cfg["loss"], epochs=cfg["teacher_epochs"], batch_size=32,
                             lr=0.001, seeds=every),
                arms={a: dict(input_sigma=a != "no_error_teacher", leak=a != "leak_free_teacher")
                      for a in ("teacher", "no_error_teacher", "leak_free_teacher")},
                candidates=dict(layers=grid["layer"].split(","), poolings=grid["pooling"].split(","),
                                segments=segments, head="ridge", alpha=alpha),
                students=dict(architectures=["mlp", "starnet"], seeds=every, epochs=cfg["student_epochs"], patience=5,
                              heads="ridge", label_free="mlp"),
                margins={})


def simulated(steps, out: str, plan: Plan, leak: bool) -> str:
    """The plan's spectra at ``out``, simulated unless the directory exists (its digests are logged by every step
    that reads it)."""
    d = plan.data
    if not Path(out).exists():
        steps(f"simulate{'' if leak else '_leak_free'}", "simulate", reuse=False, out=out, seed=d["seed"],
              n_train=d["n_train"], n_val=d["n_val"], n_test=d["n_test"], leak=str(leak).lower())
    return out
