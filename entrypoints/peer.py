"""The field's own estimators beside the student: The Cannon, the template fit with the simulator's model, a CNN.

    mlflow run . -e peer -P method=cannon,cnn --env-manager local
    mlflow run . -e peer -P method=template_fit -P n_spectra=200 -P prior=true --env-manager local

One run per method (nested children of this run when several are asked for), each logging the keys every estimator
logs, prefixed with the method (``cannon_test_r2_log_g`` with ``_lo`` / ``_hi``), ``{method}_fit_seconds`` and
``{method}_predict_seconds``, the tag ``sees_sigma``, ``predictions/test.parquet`` and the predicted-vs-true figure.
A peer logs its own metrics, tables and figures beside them: ``template_fit`` its squared error over the
Cramer-Rao bound (``template_fit_crb_ratio_{label}``), binned by S/N and T_eff; a peer that needs the built-in
simulator's spectra refuses other data before any peer runs. The peers and their options are ``distill.peers.PEERS``.
"""
import contextlib

import click
import mlflow
import pandas as pd

from distill import figures, intervals, metrics, tracking
from distill.ceiling import check_simulated
from distill.data import LABELS, open_dataset
from distill.errors import DistillError, check_choices
from distill.peers import PEERS
from distill.peers.estimate import run
from distill.peers.peer import options_by_name
from entrypoints import _options as opt
from entrypoints._cli import one_line_errors, progress_bar, split_list
from entrypoints._upstream import log_ceiling


def peer_options(command):
    """Every registered peer's own options as click options, once each, the help naming the peers that read it."""
    for option, readers in reversed(options_by_name(PEERS.values()).values()):
        kind = type(option.default) if option.minimum is None else click.IntRange(option.minimum)
        command = click.option("--" + option.name.replace("_", "-"), default=option.default, type=kind,
                               show_default=True, help=f"{', '.join(readers)}: {option.help}")(command)
    return command


def log_estimate(peer, est, ds, labels, n_spectra, ceiling):
    """Scores of every label and split the peer predicted, the test interval, time, predictions and figures."""
    method = peer.name
    truth = {s: ds[s].params[list(LABELS)].iloc[:len(p)].reset_index(drop=True) for s, p in est.predictions.items()}
    scores = {}
    for label in labels:
        for split, pred in est.predictions.items():
            scores |= metrics.keyed(split, label, metrics.scores(truth[split][label], pred[label]), method)
        scores |= intervals.r2(truth["test"][label], est.predictions["test"][label]).keyed(
            f"{method}_test_r2_{label}")
    tracking.log_metrics(scores | est.metrics | {f"{method}_fit_seconds": est.fit_seconds,
                                                 f"{method}_predict_seconds": est.predict_seconds,
                                                 f"{method}_n_test": n_spectra})
    test = pd.DataFrame({f"{c}_{label}": (truth["test"] if c == "y" else est.predictions["test"])[label]
                         for label in labels for c in ("y", method)})
    tracking.log_parquet(test, "predictions/test.parquet")
    for path, table in est.tables.items():
        tracking.log_table(table, path)
    for path, figure in est.figures.items():
        tracking.log_figure(figure, path)
    label = "log_g" if "log_g" in labels else labels[0]
    r2 = scores[f"{method}_test_r2_{label}"]
    tracking.log_figure(figures.predicted_vs_true(truth["test"][label], est.predictions["test"][label], label,
                                                  f"{peer.description}: test R^2 {r2:.3f}",
                                                  ceiling if peer.bounded else None),
                        f"figures/{label}_pred_vs_true.png")
    return scores


@click.command()
@click.option("--method", default=",".join(PEERS), show_default=True, help="comma list of " + ", ".join(PEERS))
@opt.data
@opt.noise_level
@click.option("--labels", default="log_g", show_default=True, help="labels scored (and one CNN each), comma list")
@click.option("--n-spectra", default=0, type=click.IntRange(0), show_default=True,
              help="first N test spectra (0: all)")
@peer_options
@opt.seed
@one_line_errors
def main(method, data, noise_level, labels, n_spectra, seed, **options):
    methods, label_list = split_list(method), split_list(labels)
    check_choices("method", methods, PEERS)
    check_choices("label", label_list, LABELS)
    ds = open_dataset(data, labels=LABELS)
    n_test = len(ds["test"])
    if n_spectra > n_test:
        raise DistillError(f"n_spectra={n_spectra}: the test split holds {n_test} spectra")
    n_spectra = n_spectra or n_test
    if any(PEERS[name].needs_simulator for name in methods):  # refused before any peer runs
        check_simulated(ds["test"])
    settings = dict(noise_level=noise_level, n_spectra=n_spectra, seed=seed, labels=label_list, **options)
    with tracking.tracked_run("peer", stage="peers", method=method):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        for peer in (PEERS[name] for name in methods):
            child = (tracking.tracked_run("peer", stage="peers", nested=True) if len(methods) > 1
                     else contextlib.nullcontext())
            with child:
                mlflow.set_tags({"method": peer.name, "sees_sigma": str(peer.sees_sigma).lower()})
                if len(methods) > 1:
                    mlflow.set_tag("mlflow.runName", peer.name)
                    tracking.log_dataset(summary, data)
                    tracking.log_params(dict(method=peer.name, data=data, noise_level=noise_level))
                ceiling = log_ceiling(summary, noise_level)
                with progress_bar(peer.progress_total(settings), peer.name) as bar:
                    est = run(peer, ds, progress=bar.update, **settings)
                scores = log_estimate(peer, est, ds, label_list, n_spectra, ceiling)
                key = f"{peer.name}_test_r2_{label_list[0]}"
                click.echo(f"{peer.name}: test R^2 {label_list[0]} {scores[key]:.3f} [{scores[key + '_lo']:.3f}, "
                           f"{scores[key + '_hi']:.3f}] on {n_spectra} test spectra; fit {est.fit_seconds:.1f} s, "
                           f"predict {est.predict_seconds:.1f} s")


if __name__ == "__main__":
    main()
