"""Stage A: how much of log g comes from the error shortcut, and does the latent add flux information?

    mlflow run . -e decompose_error -P data=data/sim --env-manager local
"""
import click
import mlflow
import numpy as np
import pandas as pd

from distill import decompose, figures, intervals, probe, tracking
from distill.data import LABELS, SPLITS, open_dataset
from distill.errors import check_choices
from distill.heads import SHARED_HEADS
from distill.intervals import Interval
from entrypoints import _options as opt
from entrypoints._cli import one_line_errors, progress_bar
from entrypoints._upstream import download_features, features_run

CONTROL = "noisy_flux+error"  # A3's control: the flux read beside sigma, as the teacher reads it


@click.command()
@opt.data
@click.option("--features", default="latest", show_default=True, help="extract run id, or latest; none: skip A4")
@opt.latent()
@opt.label
@opt.noise_level
@click.option("--folds", default=5, type=click.IntRange(2), show_default=True,
              help="k of the out-of-fold training residual")
@opt.head_settings
@opt.seed
@one_line_errors
def main(data, features, layer, pooling, direction, label, noise_level, folds, alpha, num_leaves, n_estimators, seed):
    check_choices("label", [label], LABELS)
    ds = open_dataset(data)
    head_params = opt.head_params(alpha, num_leaves, n_estimators, seed)
    with tracking.tracked_run("decompose_error", stage="A", mvp="A1-A4"):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        inputs = ["noisy_flux", "clean_flux", CONTROL] + ([] if features == "none" else ["latent"])
        # head fits: A1's heads and its out-of-fold folds, then every head on each input
        bar = progress_bar(len(SHARED_HEADS) * (1 + len(inputs)) + folds, "decompose_error", unit="fit")
        bar.unit = "fit"
        bar.set_postfix_str("A1 error-only")
        # A1 / A2: the clean error vector alone, and its residual (out-of-fold on train)
        err = probe.baseline_features(ds, "error", noise_level)
        a1, a1_head, r = decompose.error_only_residual(err, label, SHARED_HEADS, head_params, folds, seed)
        bar.update(len(SHARED_HEADS) + folds)
        tracking.log_head_scores("error", a1)
        mlflow.set_tag("a1_head", a1_head)
        a1_result = a1[label, a1_head]
        y = {s: err.y[s][label].to_numpy(np.float64) for s in SPLITS}
        tracking.log_parquet(pd.concat([pd.DataFrame({"split": s, "id": np.arange(len(r[s])), "residual": r[s],
                                                      "error_only_prediction": y[s] - r[s]}) for s in SPLITS]),
                             "residual.parquet")  # the Stage B target of distill_student
        for split in SPLITS:
            parts = decompose.variance_decomposition(y[split], y[split] - r[split])
            tracking.log_metrics({f"{split}_residual_{k}": v for k, v in parts.items()})
        a1_r2 = a1_result.scores[f"test_r2_{label}"]
        tracking.log_figure(figures.predicted_vs_true(y["test"], a1_result.predictions["test"], label,
                                                      f"A1 error-only ({a1_head}): test R^2 {a1_r2:.3f}"),
                            "figures/a1_error_only.png")
        tracking.log_figure(figures.residual_distribution(r, label), "figures/a2_residual_distribution.png")
        share = decompose.variance_decomposition(y["test"], y["test"] - r["test"])
        tracking.log_figure(figures.variance_chart(share), "figures/a2_variance_decomposition.png")
        del err
        # A3 / A4: what explains the residual
        rows, test_r, reading = [], {}, {}
        for name in inputs:
            bar.set_postfix_str(name)
            if name == "latent":
                run = features_run(features, data, noise_level, summary)
                mlflow.set_tag("features_run_id", run.info.run_id)
                local, manifest = download_features(run, sorted(set(layer.split("+"))))
                fs = probe.latent_features(local, manifest, layer, pooling, direction)
            else:
                fs = probe.baseline_features(ds, name, noise_level)
            on_r = probe.fit_heads(decompose.on_target(fs, r, "residual"), ["residual"], SHARED_HEADS, head_params)
            tracking.log_head_scores(name.replace("+", "_and_"), on_r)  # MLflow keys take no "+"
            head, best = probe.best_on_val(on_r, "residual")
            test_r[name], reading[name] = best.predictions["test"], Interval.read(best.scores, "test_r2_residual")
            for head in SHARED_HEADS:
                rows.append({"input": name, "head": head, "sees_sigma": name in (CONTROL, "latent"),
                             "val_r2_residual": on_r["residual", head].scores["val_r2_residual"],
                             "test_r2_residual": on_r["residual", head].scores["test_r2_residual"]})
            del fs  # one full-size matrix at a time
            bar.update(len(SHARED_HEADS))
        bar.close()
        table = pd.DataFrame(rows)
        tracking.log_table(table, "tables/residual_r2.json")
        tracking.log_figure(figures.residual_r2_bars(table), "figures/a3_a4_residual_r2.png")
        click.echo(f"A1 error-only ({a1_head}) test R^2 {a1_r2:.3f}; residual share of Var(y) {share['r_share']:.3f}")
        log_g_gains = decompose.log_g_gains(y["test"], y["test"] - r["test"], test_r)
        tracking.log_metrics({k: v for name, d in log_g_gains.items()
                              for k, v in d.keyed(f"{name.replace('+', '_and_')}_gain_test_r2_{label}").items()})
        click.echo("; ".join(f"{name} adds {d.text()} to the error-only {label} R^2"
                             for name, d in log_g_gains.items()))
        if "latent" in test_r:  # each input read with its head best on validation
            gain = intervals.delta(r["test"], test_r["latent"], test_r["noisy_flux"])
            control = intervals.delta(r["test"], test_r["latent"], test_r[CONTROL])
            code, text = decompose.verdict(reading["latent"], reading["noisy_flux"], gain, control)
            mlflow.set_tags({"outcome_A": code, "outcome_text_A": text})  # a reading, no criterion (distill.criteria)
            tracking.log_metrics(reading["latent"].keyed("verdict_latent_r2_residual")
                                 | reading["noisy_flux"].keyed("verdict_flux_r2_residual")
                                 | reading[CONTROL].keyed("verdict_flux_error_r2_residual")
                                 | gain.keyed("verdict_latent_minus_flux_r2_residual")
                                 | control.keyed("verdict_latent_minus_flux_error_r2_residual"))
            click.echo(f"A {code}: {text}")
        click.echo(table.to_string(index=False))


if __name__ == "__main__":
    main()
