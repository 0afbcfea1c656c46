"""Teacher throughput: denoising, encoder-only features, training, peak memory; per preset.

    python bench/teacher_speed.py                      # cpu and paper presets, auto device
    python bench/teacher_speed.py --presets paper --batch 256

Feature extraction must cost no more than 1.1x a bare forward of the layers it
needs (here: the encoder, both directions, for enc_pre_latent and enc_last); the
extract column times what extraction does per batch (both halves, pooled summaries).
"""
import resource
import time

import click
import numpy as np
import torch

from distill.device import pick_device
from distill.features.pooling import summarise
from distill.teacher import PRESETS, BlindSpotUNet1D
from distill.teacher.train import loss_fn


def timed(fn, device, repeats):
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


@click.command()
@click.option("--presets", default="cpu,paper", show_default=True)
@click.option("--batch", default=32, show_default=True)
@click.option("--repeats", default=5, show_default=True)
@click.option("--amp", is_flag=True, help="bf16 autocast on CUDA")
def main(presets, batch, repeats, amp):
    device = pick_device()
    print(f"device: {device} "
          f"({torch.cuda.get_device_name() if device.type == 'cuda' else f'{torch.get_num_threads()} threads'})"
          f", batch {batch}, 4096 pixels{', bf16 autocast' if amp else ''}")
    print(f"{'preset':>6} {'params':>9} {'denoise/s':>10} {'extract/s':>11} {'bare enc/s':>11} {'extr/bare':>9} "
          f"{'den/feat':>8} {'train/s':>8} {'peak MB':>8}")
    for name in presets.split(","):
        torch.manual_seed(0)
        model = BlindSpotUNet1D(PRESETS[name]).to(device)
        noisy = torch.rand(batch, 4096, device=device)
        sigma = torch.rand(batch, 4096, device=device) * 0.1
        layers = ["enc_pre_latent", "enc_last"]
        ctx = (lambda: torch.autocast("cuda", torch.bfloat16)) if amp and device.type == "cuda" else torch.no_grad
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

        def denoise():
            with torch.inference_mode(), ctx():
                model.denoise(noisy, sigma)

        def features():  # what extract does per batch: both halves, summaries on the device
            with torch.inference_mode(), ctx():
                for parts in model.feature_halves(noisy, sigma, layers, "both", flip_back=False).values():
                    for part in parts.values():
                        summarise(part)

        def bare():
            with torch.inference_mode(), ctx():
                model._encode(model._doubled(model.inputs(noisy, sigma)), need_skips=False)

        optimizer = torch.optim.Adam(model.parameters(), 1e-4)

        def train_step():
            with ctx() if amp else torch.enable_grad():
                mu, s = model(model.inputs(noisy, sigma)).unbind(1)
                loss = loss_fn("self_supervised", mu, s, noisy, sigma)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        model.eval()
        t_den, t_feat, t_bare = (timed(f, device, repeats) for f in (denoise, features, bare))
        model.train()
        t_train = timed(train_step, device, max(2, repeats // 2))
        peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{name:>6} {n_params:9,d} {batch / t_den:10.1f} {batch / t_feat:11.1f} {batch / t_bare:11.1f} "
              f"{t_feat / t_bare:9.3f} {t_den / t_feat:8.2f} {batch / t_train:8.1f} {peak:8.0f}")


if __name__ == "__main__":
    main()
