"""Student inference against the teacher's encoder, same machine, same spectra, side by side.

    python bench/student_speed.py                 # CPU (or CUDA when present)

Times the encoders only (weights are random: speed does not depend on them): the MLP
and CNN students for a 128-d latent (enc_pre_latent + seg_mean_K8 of the cpu teacher)
and a 384-d one (the paper teacher's), against the teacher's forward up to
enc_pre_latent (one direction, what extraction of a fwd latent runs) for both presets.
"""
import click
import torch

from distill.device import pick_device
from distill.student.model import Student
from distill.student.targets import throughput
from distill.teacher import PRESETS, BlindSpotUNet1D


@click.command()
@click.option("--spectra", default=1024, show_default=True)
@click.option("--batch-size", default=256, show_default=True)
def main(spectra, batch_size):
    device = pick_device()
    torch.manual_seed(0)
    noisy = torch.rand(spectra, 4096, device=device)
    sigma = torch.rand(spectra, 4096, device=device) * 0.1 + 0.05
    batches = [torch.stack([noisy[i:i + batch_size], sigma[i:i + batch_size]], 1)
               for i in range(0, spectra, batch_size)]
    print(f"device {device}, threads {torch.get_num_threads()}, {spectra} spectra in batches of {batch_size}")
    print(f"{'teacher':<8} {'latent':>6} {'teacher encoder /s':>19} {'student':>8} {'params':>10} {'student /s':>11} "
          f"{'speedup':>8}")
    for preset, channels in (("cpu", 16), ("paper", 48)):
        teacher = BlindSpotUNet1D(PRESETS[preset]).to(device).eval()
        t_speed = throughput(lambda x: teacher.feature_halves(x[:, 0], x[:, 1], ["enc_pre_latent"], "fwd"), batches)
        for kind in ("mlp", "cnn"):
            student = Student(kind, 1, 4096, channels * 8).to(device).eval()
            s_speed = throughput(student.encoder, [b[:, :1] for b in batches])
            n = sum(p.numel() for p in student.parameters())
            print(f"{preset:<8} {channels * 8:>6} {t_speed:>19,.0f} {kind:>8} {n:>10,} {s_speed:>11,.0f} "
                  f"{s_speed / t_speed:>7.1f}x")


if __name__ == "__main__":
    main()
