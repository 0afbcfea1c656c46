"""Extraction overhead: the whole extract (noise, hooks, pooling, Parquet) against a bare forward.

    python bench/extract_speed.py --n 4000 --preset cpu

Both runs cover the same spectra with the same batch size; the bare forward runs
only the layers extraction needs (the encoder, both directions). Target: <= 1.10.
"""
import tempfile
import time
from pathlib import Path

import click
import torch

from distill.data import add_noise, noise_draw, open_dataset
from distill.device import pick_device
from distill.features.extract import extract_features, resolve_layers
from distill.simulator.dataset import simulate_dataset
from distill.teacher import PRESETS, BlindSpotUNet1D


@click.command()
@click.option("--n", default=4000, show_default=True, help="spectra in the train split")
@click.option("--preset", default="cpu", show_default=True)
@click.option("--layers", default="enc_pre_latent,enc_last,enc_3,enc_6", show_default=True)
@click.option("--batch-size", default=128, show_default=True)
def main(n, preset, layers, batch_size):
    device = pick_device()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        simulate_dataset(Path(tmp) / "d", dict(train=n, val=10, test=10))
        ds = open_dataset(Path(tmp) / "d")
        torch.manual_seed(0)
        model = BlindSpotUNet1D(PRESETS[preset]).to(device).eval()
        names = resolve_layers(model, layers)

        def bare_forward():
            for split, f in ds.splits.items():
                for start, flux, error in f.batches(batch_size):
                    noisy = add_noise(flux, error, 1.0, noise_draw(split, range(start, start + len(flux)), f.n_pixels))
                    with torch.inference_mode():
                        x = model._doubled(model.inputs(torch.as_tensor(noisy, device=device),
                                                        torch.as_tensor(error, device=device)))
                        model._encode(x, need_skips=False)
            if device.type == "cuda":
                torch.cuda.synchronize()

        extract_features(model, ds, names, "both", 1.0, Path(tmp) / "warm-up", batch_size, device)  # first-call set-up
        t = time.time()
        bare_forward()
        bare = time.time() - t
        manifest = extract_features(model, ds, names, "both", 1.0, Path(tmp) / "features", batch_size, device)
        total = n + 20
        print(f"{preset} preset on {device}, {total} spectra, layers {','.join(names)}, batch {batch_size}")
        print(f"bare forward (read + noise + encoder): {bare:6.1f} s  {total / bare:8.0f} spectra/s")
        print(f"extract (+ summaries + Parquet):       {manifest['seconds']:6.1f} s  "
              f"{total / manifest['seconds']:8.0f} spectra/s")
        print(f"ratio extract / bare forward: {manifest['seconds'] / bare:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
