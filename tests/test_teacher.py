"""The blind-spot teacher: blindness, reference architecture, checkpoints, features, training."""
import numpy as np
import pytest
import torch

from distill.data import add_noise, open_dataset
from distill.errors import DistillError
from distill.teacher import PRESETS, BlindSpotUNet1D, TeacherConfig, load, save
from distill.teacher.model import Block
from distill.teacher.train import TeacherTrainer, TrainSettings

TINY = TeacherConfig(num_layers=4, embed_dim=8, kernel_size=5)


def random_model(config=TINY, seed=0):
    torch.manual_seed(seed)
    model = BlindSpotUNet1D(config)
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("config", [TINY, PRESETS["cpu"]], ids=["tiny", "cpu"])
def test_output_never_sees_its_own_pixel(config):
    model = random_model(config).double()
    x = torch.rand(1, 2, 1024 if config is TINY else 4096, dtype=torch.float64, requires_grad=True)
    n = x.shape[-1]
    for i in (0, 1, 2, 7, n // 2, n - 2, n - 1):
        for channel in (0, 1):
            (grad,) = torch.autograd.grad(model(x)[0, channel, i], x)
            assert grad[0, :, i].abs().max() == 0, f"pixel {i} sees itself"
            seen = grad[0].abs().sum(0) > 0
            assert all(seen[j] for j in (i - 1, i + 1) if 0 <= j < n), f"pixel {i} misses a neighbour"
            if config is not TINY:
                assert seen.sum() == n - 1, "the reference depth sees the whole rest of the spectrum"


def test_blindness_fails_without_blind_spot_mode():
    """The test above can fail: a plain U-Net does see its own pixel."""
    model = random_model(TeacherConfig(num_layers=4, embed_dim=8, kernel_size=5, blind_spot=False)).double()
    x = torch.rand(1, 2, 256, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x)[0, 0, 100], x)
    assert grad[0, :, 100].abs().max() > 0


def test_block_is_the_specified_causal_convolution():
    """pad (k-1)d/2 on the left, Conv1d with padding "same", drop (k-1)d/2 at the right."""
    torch.manual_seed(0)
    for kernel, dilation in ((25, 1), (5, 3)):
        block = Block(3, 4, kernel, dilation, use_bn=False).eval()
        x = torch.randn(2, 3, 64)
        shift = (kernel - 1) * dilation // 2
        same = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (shift, 0)), block.conv.weight, block.conv.bias,
                                          padding="same", dilation=dilation)[..., :-shift]
        torch.testing.assert_close(block(x), torch.nn.functional.leaky_relu(same, 0.1))


def test_paper_preset_matches_the_reference_checkpoint_layout():
    model = BlindSpotUNet1D(PRESETS["paper"])
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 1_889_670
    assert len(state) == 203
    assert state["encoders.0.conv.weight"].shape == (48, 2, 25)
    assert state["decoders_a.7.conv.weight"].shape == (48, 50, 25)
    assert state["nin_layers.2.conv.weight"].shape == (2, 96, 1)
    assert {k.split(".")[0] for k in state} == {"encoders", "decoders_a", "decoders_b", "nin_layers"}
    assert len([k for k in state if k.startswith("encoders.") and k.endswith("conv.weight")]) == 10


@pytest.mark.parametrize("lightning", [False, True])
def test_save_load_round_trip_reproduces_outputs(tmp_path, lightning):
    model = random_model(TeacherConfig(num_layers=5, embed_dim=6, kernel_size=7, input_sigma=False, use_bn=False))
    save(model, tmp_path / "t.ckpt", lightning=lightning)
    if lightning:
        raw = torch.load(tmp_path / "t.ckpt", weights_only=True)
        assert all(k.startswith("model.") for k in raw["state_dict"])
    loaded = load(tmp_path / "t.ckpt")
    assert loaded.config == model.config and not loaded.training
    x = torch.rand(3, 1, 512)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_load_names_the_first_mismatch(tmp_path):
    model = random_model()
    state = model.state_dict()
    broken = dict(state)
    broken["decoders_b.1.conv.weight"] = torch.zeros(8, 8, 3)
    torch.save(broken, tmp_path / "shape.pt")
    with pytest.raises(DistillError, match=r"'decoders_b.1.conv.weight' has shape \(8, 8, 3\)"):
        load(tmp_path / "shape.pt")
    missing = {k: v for k, v in state.items() if not k.startswith("nin_layers.2")}
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(DistillError, match="missing key 'nin_layers.2.conv.weight'"):
        load(tmp_path / "missing.pt")
    torch.save({**state, "head.weight": torch.zeros(1)}, tmp_path / "extra.pt")
    with pytest.raises(DistillError, match="unexpected key 'head.weight'"):
        load(tmp_path / "extra.pt")
    torch.save({"epoch": torch.tensor(3)}, tmp_path / "other.pt")
    with pytest.raises(DistillError, match="not a blind-spot U-Net"):
        load(tmp_path / "other.pt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(DistillError, match="cannot read as a torch checkpoint"):
        load(tmp_path / "junk.ckpt")
    with pytest.raises(DistillError, match="checkpoint not found"):
        load(tmp_path / "absent.ckpt")


def test_features_shapes_and_directions():
    model = random_model()
    noisy, sigma = torch.rand(2, 1024), torch.rand(2, 1024)
    both = model.features(noisy, sigma, model.layer_names(), "both")
    fwd = model.features(noisy, sigma, ["enc_last", "enc_2"], "fwd")
    bwd = model.features(noisy, sigma, ["enc_last", "enc_2"], "bwd")
    for name, value in both.items():
        channels = 2 * (2 * TINY.embed_dim if name == "dec_input" else TINY.embed_dim)
        assert value.shape == (2, channels, model.feature_length(name, 1024)), name
    for name in ("enc_last", "enc_2"):
        torch.testing.assert_close(both[name], torch.cat([fwd[name], bwd[name]], 1))
    mirrored = model.features(noisy.flip(-1), sigma.flip(-1), ["enc_last"], "fwd")["enc_last"]
    torch.testing.assert_close(bwd["enc_last"], mirrored.flip(-1))
    with pytest.raises(ValueError, match="unknown layer"):
        model.features(noisy, sigma, ["enc_99"])


def test_one_pass_denoising_and_features_equal_the_two_passes():
    """What extract stores from one pass: the denoised flux and every layer's halves, as the separate calls give."""
    model = random_model().eval()
    noisy, sigma = torch.rand(3, 1024), torch.rand(3, 1024) + 0.1
    layers = ["enc_1", "enc_pre_latent", "enc_last", "dec_input"]
    with torch.inference_mode():
        denoised, halves = model.denoise_with_features(noisy, sigma, layers)
        separate = model.feature_halves(noisy, sigma, layers, "both", flip_back=False)
        torch.testing.assert_close(denoised, model.denoise(noisy, sigma))
    for name in layers:
        for d in ("fwd", "bwd"):
            torch.testing.assert_close(halves[name][d], separate[name][d])


def test_encoder_features_do_not_run_the_decoder():
    model = random_model()
    calls = []
    for block in list(model.decoders_a) + list(model.decoders_b):
        block.register_forward_hook(lambda *a: calls.append(1))
    model.features(torch.rand(1, 1024), torch.rand(1, 1024), ["enc_pre_latent", "enc_last", "enc_3"])
    assert calls == []
    x = torch.rand(1, 2, 1024)
    dec_input = model.features(x[:, 0], x[:, 1], ["dec_input"], "fwd")["dec_input"]
    assert calls == []
    seen = []
    model.decoders_a[0].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    model(x)
    torch.testing.assert_close(dec_input, seen[0][:1])  # exactly what enters the first decoder pair


def test_short_training_reduces_the_error_to_the_clean_flux(tiny_data):
    ds = open_dataset(tiny_data)
    torch.manual_seed(0)
    trainer = TeacherTrainer(BlindSpotUNet1D(TINY), ds["train"], ds["val"],
                             TrainSettings(epochs=6, batch_size=16, lr=3e-3), torch.device("cpu"))
    for _ in range(6):
        metrics, _ = trainer.step()
    assert metrics["val_mse_denoised"] < 0.8 * metrics["val_mse_noisy"]
    assert metrics["val_snr_denoised"] > metrics["val_snr_noisy"]
    flux, error = ds["val"].read(0, 4)
    noisy = add_noise(flux, error, 1.0, rng=np.random.default_rng(0))
    denoised = trainer.model.eval().denoise(torch.as_tensor(noisy), torch.as_tensor(error))
    assert denoised.shape == (4, 4096) and torch.isfinite(denoised).all()
