"""Run the frozen teacher over every split and store pooled-ready latents as Parquet.

    mlflow run . -e extract -P data=data/sim -P teacher=latest --env-manager local
"""
import shutil
import tempfile
from pathlib import Path

import click
import mlflow

from distill import tracking
from distill.data import open_dataset
from distill.device import pick_device
from distill.features.extract import DEFAULT_LAYERS, extract_features, resolve_layers
from distill.features.pooling import check_segments
from distill.teacher import DIRECTIONS
from entrypoints import _options as opt
from entrypoints._cli import one_line_errors, progress_bar
from entrypoints._upstream import resolve_teacher


@click.command()
@opt.data
@click.option("--teacher", default="latest", show_default=True, help="checkpoint path, train_teacher run id, or latest")
@opt.noise_level
@click.option("--layer", default=DEFAULT_LAYERS, show_default=True, help="comma list, or default (every named layer)")
@click.option("--direction", default="both", type=click.Choice(DIRECTIONS), show_default=True)
@click.option("--denoised", default=False, type=bool, show_default=True, help="also store the denoised flux")
@opt.segments()
@click.option("--batch-size", default=128, type=click.IntRange(1), show_default=True)
@one_line_errors
def main(data, teacher, noise_level, layer, direction, denoised, segments, batch_size):
    check_segments(segments)
    ds = open_dataset(data)
    with tracking.tracked_run("extract", stage="1", mvp="1.1"):
        model, ref = resolve_teacher(teacher, data)
        mlflow.set_tags(ref)
        layers = resolve_layers(model, layer)
        tracking.log_params(dict(data=data, teacher=teacher, noise_level=noise_level, layer=layer, direction=direction,
                                 denoised=denoised, segments=segments, batch_size=batch_size))
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        mlflow.set_tag("noise_level_value", repr(float(noise_level)))
        work = Path(tempfile.mkdtemp(prefix="extract-"))
        total = sum(len(f) for f in ds.splits.values())
        with progress_bar(total, "extract") as bar:
            manifest = extract_features(model, ds, layers, direction, noise_level, work / "features", batch_size,
                                        pick_device(), denoised, bar.update,
                                        info=ref | {"data_dir": str(Path(data).resolve()), "digests": summary},
                                        segments=segments)
        mlflow.log_artifacts(str(work / "features"), "features")
        size = sum(p.stat().st_size for p in (work / "features").iterdir())
        tracking.log_metrics({"extract_seconds": manifest["seconds"], "forward_seconds": manifest["forward_seconds"],
                              "spectra_per_second": total / manifest["seconds"], "features_mb": size / 2**20})
        shutil.rmtree(work, ignore_errors=True)
        click.echo(f"extracted {len(layers)} layers x {manifest['directions']} for {total} spectra "
                   f"in {manifest['seconds']:.0f} s ({size / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
