"""Is the latent's log g held back by the probe rather than the teacher? Ridge log g test R^2 per layer x segment
count, with the plan's fixed alpha (1e-3) and with alpha chosen on validation, against raw noisy flux read alike.

    python bench/pooling_resolution.py --data data/demo --teacher runs/teacher.pt --teacher runs/epoch_0.pt
    python bench/pooling_resolution.py --data data/demo --teacher latest --ks 16,64,256
    MLFLOW_TRACKING_URI=sqlite:///mlruns/bench_study/mlflow.db \
        python bench/pooling_resolution.py --data mlruns/bench_study/demo_forest_gravity_false --teacher all

Each teacher (a weights file; a train_teacher run id or ``latest``: its ``teacher.pt`` in the tracking store;
``all``: every snapshot of every train_teacher run there, e.g. those of ``bench/teacher_study_time.py --keep``) runs
forward over every split at noise 1.0 with the extract's fixed noise draws; every layer's map is reduced to
``seg_mean_K{k}`` for each k its length allows, straight from the maps: no extract run, whatever K it stored
(``extract -P segments``; ``teacher_study`` stores K <= 16). Ridge is the probe's (StandardScaler + Ridge). For
each alpha rule the best layer x K on validation is set against raw flux: R^2(latent) - R^2(raw flux) on the test
split, with its 95 % paired-bootstrap interval.
"""
import hashlib
from pathlib import Path

import click
import mlflow
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import r2_score

from distill import heads, intervals, tracking
from distill.data import add_noise, noise_draw, open_dataset
from distill.heads import ON_VAL
from distill.teacher import load

PLAN_ALPHA = 1e-3


def noisy_splits(data: str, noise_level: float = 1.0) -> dict:
    """{split: (noisy flux, sigma, log g)} with the extract's fixed noise draws."""
    out = {}
    for split, f in open_dataset(data).splits.items():
        flux, error = f.read(0, len(f))
        z = noise_draw(split, range(len(flux)), f.n_pixels)
        out[split] = (add_noise(flux, error, noise_level, z), error * np.float32(noise_level),
                      f.params["log_g"].to_numpy())
    return out


def segment_features(model, splits: dict, ks, layers=None, batch: int = 250) -> dict:
    """{(layer, k): {split: (N, C * k) segment means of the forward half}} for every layer (or those named) and
    k <= its length."""
    feats = {}
    for split, (noisy, sigma, _) in splits.items():
        parts = {}
        for start in range(0, len(noisy), batch):
            with torch.inference_mode():
                halves = model.feature_halves(torch.as_tensor(noisy[start:start + batch]),
                                              torch.as_tensor(sigma[start:start + batch]),
                                              layers or model.layer_names(), "fwd")
            for layer, half in halves.items():
                n, c, length = half["fwd"].shape
                for k in (k for k in ks if k <= length):
                    parts.setdefault((layer, k), []).append(half["fwd"].reshape(n, c, k, -1).mean(-1).reshape(n, -1))
        for key, blocks in parts.items():
            feats.setdefault(key, {})[split] = torch.cat(blocks).numpy()
    return feats


RULES = {"alpha 1e-3 (plan)": PLAN_ALPHA, "alpha on val": ON_VAL}


def ridge_fit(x: dict, splits: dict, alpha) -> tuple:
    """(alpha used, val R^2, test predictions) of the probe's Ridge on features ``x`` ({split: array}); ``alpha``
    a number or ``val`` (chosen on validation, as ``main`` does)."""
    fit = heads.fit(heads.make_pipeline("ridge", alpha=alpha), x["train"], splits["train"][2], x["val"],
                    splits["val"][2])
    return fit.named_steps["head"].alpha_, r2_score(splits["val"][2], fit.predict(x["val"])), fit.predict(x["test"])


def weights_digest(model) -> str:
    """A digest of a network's tensors: snapshots with equal weights (cells sharing their untrained network) match."""
    h = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        h.update(key.encode() + tensor.cpu().numpy().tobytes())
    return h.hexdigest()


def teachers(ref: str) -> list:
    """[(name, weights file)]: a file as given; a train_teacher run id or ``latest``: its teacher.pt; ``all``: every
    snapshot of every FINISHED train_teacher run in the tracking store (what ``teacher_study`` trained)."""
    if ref == "all":
        found = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                   order_by=["attributes.start_time"],
                                   filter_string=f"tags.`{tracking.ENTRY_POINT_TAG}` = 'train_teacher' and "
                                                 "attributes.status = 'FINISHED'")
        out = []
        for run in found:
            name = f"{run.data.params['preset']} | {run.data.params['loss']}" + \
                ("" if run.data.tags.get("input_sigma") != "false" else " | no error")
            for artifact in mlflow.MlflowClient().list_artifacts(run.info.run_id, "snapshots"):
                out.append((f"{name} | {Path(artifact.path).stem}", tracking.download(run.info.run_id, artifact.path)))
        return out
    if ref == "latest" or tracking.is_run_id(ref):
        return [(ref, tracking.download(tracking.resolve_run(ref, "train_teacher").info.run_id, "teacher.pt"))]
    return [(ref, ref)]


@click.command()
@click.option("--data", required=True, help="dataset directory (pfsspec layout)")
@click.option("--teacher", "refs", multiple=True, required=True,
              help="weights file, train_teacher run id, latest, or all (every snapshot in the store)")
@click.option("--ks", default="16,64,256", show_default=True, help="segment counts")
@click.option("--layers", default="all", show_default=True, help="comma list of layers to read, or all")
@click.option("--grid", is_flag=True, help="print every layer x K, not only the best cell")
def main(data, refs, ks, layers, grid):
    torch.set_num_threads(2)
    ks = [int(k) for k in ks.split(",")]
    layers = None if layers == "all" else layers.split(",")
    splits = noisy_splits(data)
    y = splits["test"][2]
    raw = {rule: ridge_fit({s: v[0] for s, v in splits.items()}, splits, alpha) for rule, alpha in RULES.items()}
    for rule, (alpha, _, pred) in raw.items():
        print(f"raw noisy flux, {rule}: test R^2 {r2_score(y, pred):.3f} (alpha {alpha:g})")
    read = {}  # weights digest -> the name it was read under
    for name, path in [t for ref in refs for t in teachers(ref)]:
        model = load(path).eval()
        digest = weights_digest(model)
        if digest in read:
            print(f"\n{name}: the same weights as {read[digest]}")
            continue
        read[digest] = name
        rows = []
        for (layer, k), x in segment_features(model, splits, ks, layers).items():
            for rule, setting in RULES.items():
                alpha, val_r2, pred = ridge_fit(x, splits, setting)
                rows.append({"layer": layer, "K": k, "rule": rule, "alpha": alpha, "val_r2": val_r2,
                             "test_r2": r2_score(y, pred), "pred": pred})
        table = pd.DataFrame(rows)
        print(f"\n{name}")
        if grid:
            print(table.pivot_table(index=["layer", "K"], columns="rule", values="test_r2").round(3).to_string())
        for rule, part in table.groupby("rule"):
            best = part.loc[part["val_r2"].idxmax()]
            diff = intervals.delta(y, best["pred"], raw[rule][2])
            print(f"best on val, {rule}: {best['layer']} K{best['K']} (alpha {best['alpha']:g}) test R^2 "
                  f"{best['test_r2']:.3f}; minus raw flux {diff.text()} -> {diff.verdict()}")


if __name__ == "__main__":
    main()
