"""Simulate a PFS red-arm dataset (train/val/test) in the pfsspec HDF5 layout.

    mlflow run . -e simulate -P out=data/sim -P n_train=2000 --env-manager local
"""
import hashlib
import json
import time
from pathlib import Path

import click
import mlflow
import numpy as np

from distill import simulator, tracking
from distill.data import open_dataset
from distill.errors import DistillError
from distill.simulator import figures
from distill.simulator.dataset import simulate_dataset
from distill.simulator.model import SpectrumModel
from distill.simulator.sample import PRIORS, parse_mag
from entrypoints._cli import one_line_errors, progress_bar

RECORD = "simulation.json"


def simulator_digest() -> str:
    """Digest of the simulator's source: a dataset made by other physics is never reused."""
    source = sorted(Path(simulator.__file__).parent.glob("*.py"))
    return hashlib.blake2b(b"".join(p.read_bytes() for p in source), digest_size=8).hexdigest()


@click.command()
@click.option("--out", default="data/sim", show_default=True, help="dataset directory to create")
@click.option("--n-train", default=2000, type=click.IntRange(1), show_default=True)
@click.option("--n-val", default=500, type=click.IntRange(1), show_default=True)
@click.option("--n-test", default=1000, type=click.IntRange(1), show_default=True)
@click.option("--seed", default=42, type=int, show_default=True)
@click.option("--mag", default="21.5", show_default=True, help="AB magnitude, or a range such as 20.5-22.5")
@click.option("--n-exposures", default=20, type=click.IntRange(1), show_default=True,
              help="900 s exposures; 20 gives median S/N ~7 at mag 21.5")
@click.option("--leak", default=True, type=bool, show_default=True,
              help="error computed from the clean flux (false: flat shape)")
@click.option("--prior", default="uniform", type=click.Choice(PRIORS), show_default=True)
@click.option("--forest-gravity", default=True, type=bool, show_default=True,
              help="ionised forest lines weaken as g^(-1/3) (false: a forest without gravity signal)")
@one_line_errors
def main(out, n_train, n_val, n_test, seed, mag, n_exposures, leak, prior, forest_gravity):
    mag_range = parse_mag(mag)
    settings = dict(n_train=n_train, n_val=n_val, n_test=n_test, seed=seed, mag=list(mag_range),
                    n_exposures=n_exposures, leak=leak, prior=prior, forest_gravity=forest_gravity,
                    simulator=simulator_digest())
    out = Path(out)
    with tracking.tracked_run("simulate", stage="data"):
        tracking.log_params(dict(out=out, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed, mag=mag,
                                 n_exposures=n_exposures, leak=leak, prior=prior, forest_gravity=forest_gravity))
        t0 = time.time()
        record = out / RECORD
        if record.is_file() and json.loads(record.read_text()).get("settings") == settings:
            click.echo(f"{out}: already simulated with these settings; reusing it", err=True)
            reused = True
        else:
            if out.exists() and any(out.iterdir()):
                raise DistillError(f"{out}: exists with other contents; choose a new out= or remove it")
            sizes = dict(train=n_train, val=n_val, test=n_test)
            with progress_bar(sum(sizes.values()), "simulate") as bar:
                simulate_dataset(out, sizes, seed, mag_range, n_exposures, leak, prior, progress=bar.update,
                                 forest_gravity=forest_gravity)
            record.write_text(json.dumps({"settings": settings}, indent=1))
            reused = False
        seconds = time.time() - t0
        ds = open_dataset(out)
        tracking.log_dataset(ds.summary(), out)
        snr = {s: ds[s].params["snr"].to_numpy() for s in ("train", "val", "test")}
        metrics = {f"median_snr_{s}": np.median(v) for s, v in snr.items()}
        if not reused:
            metrics |= {"simulate_seconds": seconds, "spectra_per_second": (n_train + n_val + n_test) / seconds}
        tracking.log_metrics(metrics)
        mlflow.set_tag("simulator_digest", settings["simulator"])
        model = SpectrumModel()
        tracking.log_figure(figures.dwarf_and_giant(model, n_exposures), "figures/dwarf_vs_giant.png")
        tracking.log_figure(figures.error_vs_flux(model, n_exposures), "figures/error_vs_flux.png")
        tracking.log_figure(figures.snr_distribution(snr), "figures/snr_distribution.png")
        tracking.log_table(ds["train"].params.head(1000), "tables/train_params_head.json")
        click.echo(f"simulated {out}: median S/N {metrics['median_snr_train']:.2f} "
                   f"({n_train}/{n_val}/{n_test} spectra, {seconds:.0f} s)")


if __name__ == "__main__":
    main()
