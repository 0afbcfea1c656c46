"""Stage 1 probe: read the labels from the teacher latent (or a raw-spectrum baseline) with a head.

    mlflow run . -e probe -P pooling=seg_mean_K8 --env-manager local
    mlflow run . -e probe -P layer=enc_last,enc_pre_latent -P pooling=global_mean,mean_max,seg_mean_K8   # grid
    mlflow run . -e probe -P input=noisy_flux -P head=lightgbm                                          # baseline
"""
import itertools
import sys

import click
import mlflow
import numpy as np
import pandas as pd

from distill import criteria, figures, heads, probe, tracking
from distill.data import LABELS, check_train_size, open_dataset
from distill.errors import DistillError, check_choices
from distill.features.pooling import check_pooling
from distill.intervals import Interval
from entrypoints import _options as opt
from entrypoints._cli import one_line_errors, progress_bar, split_list
from entrypoints._upstream import download_features, features_run, log_ceiling


def run_one(fs: probe.FeatureSet, labels, head, pooling_name, early_stop, head_params, tags: dict, ceiling=None,
            cell=False):
    """Fit every label, log metrics and the per-bin table to the active run, and (unless it is a ``cell`` of a
    grid, where hundreds of cells would spend most of their time on it) the figure and the log g model.

    ``ceiling``: the information ceiling R^2 of the main label, drawn on its figure."""
    mlflow.set_tags(tags)
    results = {}
    for label in labels:
        result = probe.fit_label(fs, label, head, pooling_name, early_stop, **head_params)
        tracking.log_metrics(result.scores)
        results[label] = result
    main = results.get("log_g") or next(iter(results.values()))
    tracking.log_table(probe.bin_tables(fs, main), f"tables/per_bin_{main.label}.json")
    tracking.log_metrics({"n_features": int(np.prod(fs.x["train"].shape[1:])),
                          "n_train_used": len(fs.y["train"])})
    if cell:
        return results
    tracking.log_figure(figures.predicted_vs_true(fs.y["test"][main.label], main.predictions["test"], main.label,
                                                  f"{fs.name} + {head}: test R^2 "
                                                  f"{main.scores[f'test_r2_{main.label}']:.3f}",
                                                  ceiling),
                        f"figures/{main.label}_pred_vs_true.png")
    if pooling_name == "attention":  # the network sees standardised maps (mu_, sd_ logged beside it)
        example = ((fs.x["train"][:2] - main.model.mu_) / main.model.sd_).astype(np.float32)
        mlflow.pytorch.log_model(main.model.net_.eval(), name=f"model_{main.label}", input_example=example,
                                 serialization_format="pickle",
                                 pip_requirements=tracking.model_requirements(*tracking.TORCH_MODEL))
        mlflow.log_dict({"mu": main.model.mu_.ravel().tolist(), "sd": main.model.sd_.ravel().tolist(),
                         "y_mean": main.model.mean_, "y_std": main.model.std_},
                        f"model_{main.label}_standardisation.json")
    else:
        mlflow.sklearn.log_model(main.model, name=f"model_{main.label}", input_example=fs.x["train"][:2],
                                 serialization_format="cloudpickle",
                                 pip_requirements=tracking.model_requirements(*tracking.SKLEARN_MODEL))
    return results


ANY = 2**20  # a length and segment count longer than any layer's


def check_pca(pca: int, n_train: int, n_features: int | None = None):
    """PCA finds at most as many components as there are training spectra and features."""
    most = min(n_train, n_features or n_train)
    if pca > most:
        features = "" if n_features is None else f" and {n_features} features"
        raise DistillError(f"pca={pca}: more components than {n_train} training spectra{features} give (at most "
                           f"{most})")


@click.command()
@opt.data
@click.option("--input", "input_", default="latent", type=click.Choice(probe.INPUTS), show_default=True)
@opt.features
@opt.latent("layer, a+b to join layers, comma list for a grid",
            "global_mean, mean_max, seg_mean_K{k}, attention; comma list for a grid")
@click.option("--head", default="ridge", show_default=True, help=f"{', '.join(heads.HEADS)}; comma list for a grid")
@opt.head_settings
@click.option("--early-stop", default=False, type=bool, show_default=True, help="LightGBM early stopping on val")
@opt.labels
@click.option("--pca", default=0, type=click.IntRange(0), show_default=True, help="PCA dims fitted on train (0: off)")
@click.option("--n-train", default=0, type=click.IntRange(0), show_default=True, help="training subset (0: all)")
@opt.noise_level
@opt.seed
@one_line_errors
def main(data, input_, features, layer, pooling, direction, head, alpha, num_leaves, n_estimators, early_stop, labels,
         pca, n_train, noise_level, seed):
    layers, poolings = split_list(layer), split_list(pooling)
    head_list, label_list = split_list(head), split_list(labels)
    check_choices("head", head_list, heads.HEADS)
    check_choices("label", label_list, LABELS)
    ds = open_dataset(data, labels=LABELS)
    if n_train:
        check_train_size(n_train, f"n_train={n_train}")
    check_pca(pca, n_train or len(ds["train"]))
    head_params = opt.head_params(alpha, num_leaves, n_estimators, seed, pca=pca)
    for name in poolings:  # a name no layer could give fails before anything runs
        check_pooling(name, ANY, segments=ANY)
    combos = (list(itertools.product(layers, poolings, head_list)) if input_ == "latent"
              else [(input_, "-", h) for h in head_list])
    grid = len(combos) > 1
    mvp = "1.4" if grid else ("1.3" if pca else "1.1")
    with tracking.tracked_run("probe", stage="1", mvp=mvp, input=input_, grid=str(grid).lower()):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        local, manifest = None, None
        if input_ == "latent" or input_ == "denoised_flux":
            run = features_run(features, data, noise_level, summary)
            mlflow.set_tag("features_run_id", run.info.run_id)
            needed = sorted({p for lay in layers for p in lay.split("+")}) if input_ == "latent" else ["denoised"]
            local, manifest = download_features(run, needed)
        if grid and input_ == "latent":  # a grid of layers x poolings leaves out the cells a layer cannot give
            why = {cell: probe.unstored(manifest, *cell) for cell in dict.fromkeys(c[:2] for c in combos)}
            for (lay, pool_name), reason in why.items():
                if reason:
                    click.echo(f"left out {lay} | {pool_name}: {reason}", err=True)
            combos = [c for c in combos if not why[c[:2]]]
            if not combos:
                raise DistillError("no layer x pooling of the grid is stored by the extract run")
        ceiling = log_ceiling(summary, noise_level, "log_g" if "log_g" in label_list else label_list[0])
        drawn = ceiling if input_ in probe.BOUNDED else None  # the ceiling bounds readers of the noisy flux only
        rows, tests = [], []  # a row and the main label's test predictions per cell
        baseline = None  # raw-spectrum features are built once: one full-size copy
        if input_ != "latent":
            baseline = probe.subset_train(probe.baseline_features(ds, input_, noise_level, local), n_train, seed)
        bar = progress_bar(len(combos), "probe grid" if grid else "probe", unit="cell")
        for lay, pool_name, h in combos:
            if input_ == "latent":
                fs = probe.latent_features(local, manifest, lay, pool_name, direction)
                fs = probe.subset_train(fs, n_train, seed)
            else:
                fs = baseline
            check_pca(pca, len(fs.y["train"]), int(np.prod(fs.x["train"].shape[1:])))
            tags = {"layer": lay, "pooling": pool_name, "head": h, "direction": direction}
            if grid:
                with tracking.tracked_run("probe", stage="1", mvp="1.1", nested=True, input=input_):
                    mlflow.set_tag("mlflow.runName", f"{lay} | {pool_name} | {h}")
                    tracking.log_params({"layer": lay, "pooling": pool_name, "head": h, "direction": direction,
                                         "input": input_, "pca": pca, "n_train": n_train, "noise_level": noise_level})
                    results = run_one(fs, label_list, h, pool_name, early_stop, head_params, tags, drawn, cell=True)
                    child_id = mlflow.active_run().info.run_id
            else:
                results = run_one(fs, label_list, h, pool_name, early_stop, head_params, tags, drawn)
                child_id = mlflow.active_run().info.run_id
            main = results.get("log_g") or next(iter(results.values()))
            rows.append({"layer": lay, "pooling": pool_name, "head": h, "direction": direction,
                         "n_features": int(np.prod(fs.x["train"].shape[1:])),
                         f"val_r2_{main.label}": main.scores[f"val_r2_{main.label}"],
                         **{f"test_r2_{main.label}{end}": main.scores[f"test_r2_{main.label}{end}"]
                            for end in ("", "_lo", "_hi")},
                         f"test_mae_{main.label}": main.scores[f"test_mae_{main.label}"], "run_id": child_id})
            tests.append(main.predictions["test"])
            bar.write(f"{lay} | {pool_name} | {h}: test R^2 {main.label} {main.scores[f'test_r2_{main.label}']:.3f}",
                      file=sys.stderr)
            bar.update(1)
        bar.close()
        table = pd.DataFrame(rows)
        tracking.log_table(table, "tables/summary.json")
        label = main.label
        key, val_key = f"test_r2_{label}", f"val_r2_{label}"
        chosen = int(table[val_key].to_numpy().argmax())  # chosen on validation, reported on test

        def log_predictions(row: int, path: str):
            tracking.log_parquet(pd.DataFrame({"row": np.arange(len(tests[row])), f"y_{label}": fs.y["test"][label],
                                               f"{input_}_{label}": tests[row]}), path)
        log_predictions(chosen, "predictions/test.parquet")
        if input_ == "latent" and not pca and label == "log_g":  # Stage 1 / 1b: each head's cell best on val
            for stage, h in criteria.PROBE_HEADS.items():
                if h in set(table["head"]):
                    sub = table[table["head"] == h]
                    v = criteria.verdict(stage, Interval.read(sub.loc[sub[val_key].idxmax()].to_dict(), key),
                                         f"The best of {len(sub)} layer x pooling cell(s) on validation.")
                    mlflow.set_tags(v.tags())
                    click.echo(f"{stage} {v.status}: {v.text}")
        if grid:
            for h in head_list:
                sub = table[table["head"] == h]
                if sub["layer"].nunique() > 1 or sub["pooling"].nunique() > 1:
                    title = f"{key} with {h}" + ("" if ceiling is None else f"; information ceiling {ceiling:.2f}" + (
                        "" if drawn else f" (the {input_} sees sigma: not bounded by it)"))
                    tracking.log_figure(figures.grid_heatmap(sub, "layer", "pooling", key, title),
                                        f"figures/grid_{h}.png")
            cells = {f"{key}_{r.layer.replace('+', '-')}_{r.pooling}_{r.head}": getattr(r, key)
                     for r in table.itertuples()}
            best = {"": table.iloc[chosen]} | {f"_{h}": sub.loc[sub[val_key].idxmax()]
                                               for h, sub in table.groupby("head")}
            for h, sub in table.groupby("head"):  # each head's own choice, for paired comparisons per head
                log_predictions(int(sub[val_key].idxmax()), f"predictions/test_{h}.parquet")
            tracking.log_metrics(cells | {f"best_{key}{head}{end}": row[f"{key}{end}"]
                                          for head, row in best.items() for end in ("", "_lo", "_hi")})
        click.echo(table.drop(columns=["run_id"]).to_string(index=False))


if __name__ == "__main__":
    main()
