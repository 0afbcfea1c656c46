"""Stage A: how much of log g comes from the error shortcut, and does the latent add flux information?

    mlflow run . -e decompose_error -P data=data/sim --env-manager local
"""
import click
import mlflow
import numpy as np
import pandas as pd

from distill import decompose, figures, heads, probe, tracking
from distill.data import LABELS, SPLITS, open_dataset
from distill.errors import DistillError
from distill.teacher import DIRECTIONS
from entrypoints._cli import one_line_errors
from entrypoints._upstream import download_features, features_run

HEADS = ("ridge", "lightgbm")


def with_target(fs: probe.FeatureSet, target: dict, name: str) -> probe.FeatureSet:
    return probe.FeatureSet(fs.x, {s: pd.DataFrame({name: target[s]}) for s in SPLITS}, fs.name)


def fit_heads(fs, label, prefix, head_params) -> dict:
    """Ridge and LightGBM on one target; log metrics as ``{prefix}_{head}_{split}_{metric}_{label}``."""
    out = {}
    for head in HEADS:
        result = probe.fit_label(fs, label, head, **head_params)
        tracking.log_metrics({f"{prefix}_{head}_{k}": v for k, v in result.scores.items()})
        out[head] = result
    return out


def best_by_val(results: dict, label: str):
    return max(results.items(), key=lambda kv: kv[1].scores[f"val_r2_{label}"])


@click.command()
@click.option("--data", default="data/sim", show_default=True)
@click.option("--features", default="latest", show_default=True, help="extract run id, or latest; none: skip A4")
@click.option("--layer", default="enc_pre_latent", show_default=True)
@click.option("--pooling", default="seg_mean_K8", show_default=True)
@click.option("--direction", default="fwd", type=click.Choice(DIRECTIONS), show_default=True)
@click.option("--label", default="log_g", show_default=True)
@click.option("--noise-level", default=1.0, type=click.FloatRange(0), show_default=True)
@click.option("--folds", default=5, type=click.IntRange(2), show_default=True, help="k of the out-of-fold training residual")
@click.option("--alpha", default=1e-3, type=click.FloatRange(0), show_default=True)
@click.option("--num-leaves", default=15, type=click.IntRange(2), show_default=True)
@click.option("--n-estimators", default=50, type=click.IntRange(1), show_default=True)
@click.option("--seed", default=42, type=int, show_default=True)
@one_line_errors
def main(data, features, layer, pooling, direction, label, noise_level, folds, alpha, num_leaves, n_estimators, seed):
    if label not in LABELS:
        raise DistillError(f"unknown label {label!r}; valid: {', '.join(LABELS)}")
    ds = open_dataset(data)
    head_params = dict(alpha=alpha, num_leaves=num_leaves, n_estimators=n_estimators, seed=seed)
    with tracking.tracked_run("decompose_error", stage="A", mvp="A1-A4"):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        # A1: the clean error vector alone
        err = probe.baseline_features(ds, "error", noise_level)
        a1 = fit_heads(err, label, "error", head_params)
        a1_head, a1_result = best_by_val(a1, label)
        mlflow.set_tag("a1_head", a1_head)
        # A2: residual, out-of-fold on train
        y = {s: err.y[s][label].to_numpy(np.float64) for s in SPLITS}
        pipeline = heads.make_pipeline(a1_head, **head_params)
        r = {"train": y["train"] - decompose.out_of_fold(pipeline, err.x["train"], y["train"], folds, seed)}
        r |= {s: y[s] - a1_result.predictions[s] for s in ("val", "test")}
        tracking.log_parquet(pd.concat([pd.DataFrame({"split": s, "id": np.arange(len(r[s])), "residual": r[s],
                                                      "error_only_prediction": y[s] - r[s]}) for s in SPLITS]),
                             "residual.parquet")  # the Stage B target of distill_student
        for split in SPLITS:
            parts = decompose.variance_decomposition(y[split], y[split] - r[split])
            tracking.log_metrics({f"{split}_residual_{k}": v for k, v in parts.items()})
        tracking.log_figure(figures.predicted_vs_true(y["test"], a1_result.predictions["test"], label,
                                                      f"A1 error-only ({a1_head}): test R^2 {a1_result.scores[f'test_r2_{label}']:.3f}"),
                            "figures/a1_error_only.png")
        tracking.log_figure(figures.residual_distribution(r, label), "figures/a2_residual_distribution.png")
        tracking.log_figure(figures.variance_chart(decompose.variance_decomposition(y["test"], y["test"] - r["test"])),
                            "figures/a2_variance_decomposition.png")
        del err
        # A3 / A4: what explains the residual
        rows = []
        inputs = ["noisy_flux", "clean_flux"] + ([] if features == "none" else ["latent"])
        for name in inputs:
            if name == "latent":
                run = features_run(features, data, noise_level, summary)
                mlflow.set_tag("features_run_id", run.info.run_id)
                local, manifest = download_features(run, sorted(set(layer.split("+"))))
                fs = probe.latent_features(local, manifest, layer, pooling, direction)
            else:
                fs = probe.baseline_features(ds, name, noise_level)
            on_r = fit_heads(with_target(fs, r, "residual"), "residual", name, head_params)
            direct = fit_heads(fs, label, f"{name}_direct", head_params)
            for head in HEADS:
                rows.append({"input": name, "head": head, "val_r2_residual": on_r[head].scores["val_r2_residual"],
                             "test_r2_residual": on_r[head].scores["test_r2_residual"],
                             "test_r2_direct": direct[head].scores[f"test_r2_{label}"]})
            del fs  # one full-size matrix at a time
        table = pd.DataFrame(rows)
        tracking.log_table(table, "tables/residual_r2.json")
        tracking.log_figure(figures.residual_r2_bars(table), "figures/a3_a4_residual_r2.png")
        best = table.loc[table.groupby("input")["val_r2_residual"].idxmax()].set_index("input")
        a1_r2 = a1_result.scores[f"test_r2_{label}"]
        click.echo(f"A1 error-only ({a1_head}) test R^2 {a1_r2:.3f}; residual share of Var(y) "
                   f"{decompose.variance_decomposition(y['test'], y['test'] - r['test'])['r_share']:.3f}")
        if "latent" in best.index:
            code, text = decompose.verdict(best.loc["latent", "test_r2_residual"], best.loc["noisy_flux", "test_r2_residual"])
            mlflow.set_tags({"verdict": code, "verdict_text": text})
            tracking.log_metrics({"verdict_latent_r2_residual": best.loc["latent", "test_r2_residual"],
                                  "verdict_flux_r2_residual": best.loc["noisy_flux", "test_r2_residual"]})
            click.echo(f"verdict: {code}: {text}")
        click.echo(table.to_string(index=False))


if __name__ == "__main__":
    main()
