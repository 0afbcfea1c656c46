"""The torch steps at scale on whatever device is present: simulate N spectra, train the `paper` teacher for a
fixed number of steps, extract every split's latents, and check bf16 autocast against fp32 on one batch.

    python bench/gpu_pipeline.py --n-train 100000 --steps 600          # a GPU machine
    python bench/gpu_pipeline.py --n-train 4000 --steps 40             # the same on this CPU, for the ratio

Prints wall time, spectra/s and peak memory (host RSS, GPU) per step. Needs no MLflow: the library is called
as the entry points call it (TeacherTrainer, extract_features).
"""
import os
import resource
import tempfile
import time

import click
import numpy as np
import torch

from distill.data import open_dataset
from distill.device import pick_device
from distill.features.extract import extract_features
from distill.features.pooling import summarise
from distill.simulator.dataset import simulate_dataset
from distill.teacher import PRESETS, BlindSpotUNet1D
from distill.teacher.train import TeacherTrainer, TrainSettings

LAYERS = ["enc_pre_latent", "enc_last", "dec_input"]  # what `main` extracts


class _Enough(Exception):
    pass


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def report(step, seconds, n, device):
    gpu = f", GPU peak {torch.cuda.max_memory_allocated() / 1024**3:5.2f} GB" if device.type == "cuda" else ""
    print(f"{step:<28} {seconds:8.1f} s  {n / seconds:9.0f} spectra/s  host peak RSS {peak_rss_gb():5.2f} GB{gpu}",
          flush=True)


@click.command()
@click.option("--n-train", default=100_000, show_default=True)
@click.option("--steps", default=600, show_default=True, help="teacher training steps (batches)")
@click.option("--batch", default=32, show_default=True, help="teacher training batch")
@click.option("--extract-batch", default=512, show_default=True)
@click.option("--workers", default=0, show_default=True, help="simulation processes (0: all cores but two)")
def main(n_train, steps, batch, extract_batch, workers):
    device = pick_device()
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device {device} ({name}), torch {torch.__version__}, {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", ".")) as tmp:
        sizes = dict(train=n_train, val=1000, test=1000)
        os.environ["DISTILL_WORKERS"] = str(workers or max(1, (os.cpu_count() or 2) - 2))
        t = time.time()
        simulate_dataset(f"{tmp}/d", sizes)
        report(f"simulate {sum(sizes.values())}", time.time() - t, sum(sizes.values()), device)
        ds = open_dataset(f"{tmp}/d")

        torch.manual_seed(0)
        model = BlindSpotUNet1D(PRESETS["paper"])
        trainer = TeacherTrainer(model, ds["train"], ds["val"], TrainSettings(batch_size=batch), device)
        done = [0]

        def count(n):
            done[0] += n
            if done[0] >= steps * batch:
                raise _Enough

        t = time.time()
        try:
            trainer.train_epoch(count)
        except _Enough:
            pass
        if device.type == "cuda":
            torch.cuda.synchronize()
        report(f"train paper, {steps} x {batch}", time.time() - t, done[0], device)

        t = time.time()
        manifest = extract_features(trainer.model, ds, LAYERS, "both", 1.0, f"{tmp}/features", extract_batch, device)
        n_all = sum(manifest["n"].values())
        report(f"extract {n_all}, 3 layers", time.time() - t, n_all, device)
        print(f"  forward share of extract: {manifest['forward_seconds'] / manifest['seconds']:.0%}; "
              f"features on disk {sum(f.stat().st_size for f in os.scandir(f'{tmp}/features')) / 1024**2:.0f} MB")

        if device.type == "cuda":  # bf16 autocast against fp32 on one batch of pooled latents
            flux, error = ds["test"].read(0, 256)
            noisy = torch.as_tensor(flux + error * np.random.default_rng(0).standard_normal(flux.shape,
                                                                                            dtype=np.float32),
                                    device=device)
            sigma = torch.as_tensor(error, device=device)
            model = trainer.model.eval()

            def pooled(amp):
                with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=amp):
                    halves = model.feature_halves(noisy, sigma, ["enc_pre_latent"], "fwd", flip_back=False)
                    return summarise(halves["enc_pre_latent"]["fwd"])[0].float()

            full, half = pooled(False), pooled(True)
            rel = ((half - full).norm() / full.norm()).item()
            cos = torch.nn.functional.cosine_similarity(half.flatten(1), full.flatten(1)).min().item()
            timings = {}
            for amp in (False, True):
                pooled(amp)
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(10):
                    pooled(amp)
                torch.cuda.synchronize()
                timings[amp] = 10 * 256 / (time.perf_counter() - t)
            print(f"bf16 autocast vs fp32, enc_pre_latent seg means: relative error {rel:.2e}, min cosine {cos:.5f}; "
                  f"encoder {timings[False]:.0f} -> {timings[True]:.0f} spectra/s "
                  f"({timings[True] / timings[False]:.2f}x)")


if __name__ == "__main__":
    main()
