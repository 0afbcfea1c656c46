"""The teacher: a 1D blind-spot U-Net denoiser (Laine et al. 2019, "High-Quality
Self-Supervised Deep Image Denoising", NeurIPS; adapted to 1D spectra).

Every convolution is causal (each output sees only inputs at or before it); the
network runs on the spectrum and on its mirror image as one doubled batch, shifts
each result right by one sample, flips the mirrored half back and mixes the two
halves with 1x1 "network-in-network" blocks. So the output at pixel i never sees
the input at pixel i. Outputs: a mean ``mu`` and a spread ``s`` (Softplus); the
denoised flux is the posterior mean ``(s^2 noisy + sigma^2 mu) / (s^2 + sigma^2)``.

Module names and shapes follow the reference checkpoint
(``m215l9e48k25s1bn1d1``: 9 layers, 48 channels, kernel 25, sigma input, batch
norm, dilation 1: 1,889,670 parameters, 203 state-dict entries).
"""
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

DIRECTIONS = ("fwd", "bwd", "both")


@dataclass(frozen=True)
class TeacherConfig:
    num_layers: int = 9
    embed_dim: int = 48
    kernel_size: int = 25
    input_sigma: bool = True
    use_bn: bool = True
    dilation: int = 1
    blind_spot: bool = True

    @property
    def in_channels(self) -> int:
        return 2 if self.input_sigma else 1

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "paper": TeacherConfig(),
    "cpu": TeacherConfig(num_layers=9, embed_dim=16, kernel_size=9),
    "mid": TeacherConfig(num_layers=9, embed_dim=32, kernel_size=9),  # ~4x the cpu preset's work per spectrum
}


class Block(nn.Module):
    """Conv1d ("same", dilation d) -> BatchNorm1d (or identity) -> LeakyReLU(0.1); causal in blind-spot mode:
    pad (k-1) d / 2 on the left, convolve with "same" padding, drop as many samples at the right end.

    Computed as one unpadded convolution of the input padded by (k-1) d on the left
    (or (k-1) d / 2 on both sides when not blind): the same numbers, less work.
    """

    def __init__(self, c_in, c_out, kernel_size, dilation=1, use_bn=True, blind_spot=True):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
        self.bn = nn.BatchNorm1d(c_out) if use_bn else nn.Identity()
        half = (kernel_size - 1) * dilation // 2
        self.padding = (2 * half, 0) if blind_spot else (half, half)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(F.pad(x, self.padding))), 0.1)


class BlindSpotUNet1D(nn.Module):
    """Blind-spot U-Net over spectra of shape (batch, channels, pixels), pixels divisible by 2^(num_layers-1).

    ``forward(x)``: x (B, in_channels, L) with channel 0 the noisy flux and channel 1
    sigma (= error * noise_level); returns (B, 2, L): ``mu`` and ``s``.
    """

    def __init__(self, config: TeacherConfig = TeacherConfig()):
        super().__init__()
        self.config = c = config
        block = lambda i, o, k=c.kernel_size: Block(i, o, k, c.dilation if k > 1 else 1, c.use_bn,  # noqa: E731
                                                    c.blind_spot)
        e = c.embed_dim
        self.encoders = nn.ModuleList([block(c.in_channels, e)] + [block(e, e) for _ in range(c.num_layers)])
        self.decoders_a = nn.ModuleList([block(2 * e,
                                               e) for _ in range(c.num_layers - 2)] + [block(e + c.in_channels, e)])
        self.decoders_b = nn.ModuleList([block(e, e) for _ in range(c.num_layers - 1)])
        self.nin_layers = nn.ModuleList([block(2 * e, 4 * e, 1), block(4 * e, 2 * e, 1), block(2 * e, 2, 1)])

    # ----- pieces -------------------------------------------------------------------------
    def _pool(self, x):
        if self.config.blind_spot:
            x = F.pad(x, (1, 0))[..., :-1]
        return F.max_pool1d(x, 2)

    def _shift(self, x):
        return F.pad(x, (1, 0))[..., :-1] if self.config.blind_spot else x

    def _encode(self, x, keep=None, need_skips=True):
        """Run the encoder; returns (bottleneck output, skips, named maps in ``keep``)."""
        n = self.config.num_layers
        keep = keep or set()
        named, skips = {}, [x]
        h = self.encoders[0](x)
        if "enc_0" in keep:
            named["enc_0"] = h
        for i in range(1, n):
            h = self.encoders[i](h)
            if f"enc_{i}" in keep:
                named[f"enc_{i}"] = h
            h = self._pool(h)
            if i < n - 1 and need_skips:
                skips.append(h)
        if "enc_pre_latent" in keep:
            named["enc_pre_latent"] = h
        h = self.encoders[n](h)
        if f"enc_{n}" in keep:
            named[f"enc_{n}"] = h
        if "enc_last" in keep:
            named["enc_last"] = h
        return h, skips, named

    @staticmethod
    def _join(h, skip):
        """Upsample (nearest) to the skip's length and concatenate [h, skip] on channels."""
        return torch.cat([F.interpolate(h, size=skip.shape[-1], mode="nearest"), skip], dim=1)

    def _unet(self, x):
        return self._decode(*self._encode(x)[:2])

    def _decode(self, h, skips):
        for dec_a, dec_b in zip(self.decoders_a, self.decoders_b):
            h = dec_b(dec_a(self._join(h, skips.pop())))
        return h

    def _doubled(self, x):
        return torch.cat([x, x.flip(-1)], dim=0)

    # ----- public API -----------------------------------------------------------------------
    def forward(self, x):
        return self._head(self._unet(self._doubled(x) if self.config.blind_spot else x), x.shape[0])

    def _head(self, h, b):
        """Decoder output (2B blind-spot halves, or B) -> (B, 2, L) ``mu`` and ``s``."""
        h = self._shift(h)
        if self.config.blind_spot:
            h = torch.cat([h[:b], h[b:].flip(-1)], dim=1)
        else:
            h = torch.cat([h, h], dim=1)
        for layer in self.nin_layers:
            h = layer(h)
        return F.softplus(h)

    def inputs(self, noisy, sigma):
        """Stack (B, L) noisy flux and sigma into the (B, in_channels, L) network input."""
        channels = [noisy, sigma] if self.config.input_sigma else [noisy]
        return torch.stack(channels, dim=1)

    def denoise(self, noisy, sigma):
        """Posterior-mean denoised flux (B, L) from noisy flux and sigma (B, L), same unit."""
        mu, s = self(self.inputs(noisy, sigma)).unbind(1)
        return self._posterior_mean(noisy, sigma, mu, s)

    @staticmethod
    def _posterior_mean(noisy, sigma, mu, s):
        return (s**2 * noisy + sigma**2 * mu) / (s**2 + sigma**2)

    def denoise_with_features(self, noisy, sigma, layers) -> tuple:
        """(``denoise``, ``feature_halves(..., "both", flip_back=False)``) from one pass of the encoder, which the
        denoiser runs on both halves anyway (blind-spot teachers only)."""
        if not self.config.blind_spot:
            raise ValueError("denoise_with_features needs a blind-spot teacher")
        x = self.inputs(noisy, sigma)
        b = x.shape[0]
        h, skips, named = self._encode(self._doubled(x), set(layers))
        if "dec_input" in layers:
            named["dec_input"] = self._join(h, skips[-1])
        mu, s = self._head(self._decode(h, skips), b).unbind(1)
        halves = {name: dict(zip(("fwd", "bwd"), named[name].split(b))) for name in layers}
        return self._posterior_mean(noisy, sigma, mu, s), halves

    def layer_names(self) -> list:
        n = self.config.num_layers
        return ["enc_pre_latent", "enc_last", "dec_input"] + [f"enc_{i}" for i in range(n + 1)]

    def feature_length(self, name: str, n_pixels: int) -> int:
        """Wavelength length of a named feature map for spectra of n_pixels."""
        n = self.config.num_layers
        if name == "dec_input":
            return n_pixels >> (n - 2)
        if name in ("enc_pre_latent", "enc_last"):
            return n_pixels >> (n - 1)
        i = int(name.split("_")[1])
        return n_pixels >> max(i - 1, 0) if i < n else n_pixels >> (n - 1)

    def feature_halves(self, noisy, sigma, layers, direction="both", flip_back=True) -> dict:
        """Named feature maps per direction: {layer: {"fwd"/"bwd": (B, C, L')}}.

        ``fwd`` is the unmirrored half as computed; ``bwd`` the mirrored half, flipped
        back into wavelength order unless ``flip_back=False``. No decoder block ever
        runs: ``dec_input`` is the upsampled bottleneck joined with the deepest skip.
        """
        unknown = set(layers) - set(self.layer_names())
        if unknown:
            raise ValueError(f"unknown layer(s) {sorted(unknown)}; valid: {', '.join(self.layer_names())}")
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
        x = self.inputs(noisy, sigma)
        b = x.shape[0]
        halves = {"fwd": ["fwd"], "bwd": ["bwd"], "both": ["fwd", "bwd"]}[direction]
        if direction == "bwd":
            x = x.flip(-1)
        elif direction == "both":
            x = self._doubled(x)
        keep = set(layers)
        h, skips, named = self._encode(x, keep, need_skips="dec_input" in keep)
        if "dec_input" in keep:
            named["dec_input"] = self._join(h, skips[-1])
        out = {}
        for name in layers:
            parts = dict(zip(halves, named[name].split(b)))
            if "bwd" in parts and flip_back:
                parts["bwd"] = parts["bwd"].flip(-1)
            out[name] = parts
        return out

    def features(self, noisy, sigma, layers, direction="both") -> dict:
        """Named feature maps {layer: (B, C, L')}; ``both``: 2C channels, fwd then bwd (see ``feature_halves``)."""
        halves = self.feature_halves(noisy, sigma, layers, direction)
        return {name: torch.cat(list(parts.values()), dim=1) for name, parts in halves.items()}
