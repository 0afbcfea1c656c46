"""Click options shared by several entry points, each written once (MLproject keeps the same names and defaults)."""
import click

from distill.data import LABELS
from distill.errors import DistillError
from distill.features.pooling import STORE_SEGMENTS
from distill.heads import ON_VAL
from distill.teacher import DIRECTIONS
from entrypoints._cli import number_list


def options(*decorators):
    """Apply several click options as one decorator, in the order given."""
    def apply(fn):
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn
    return apply


data = click.option("--data", default="data/sim", show_default=True, help="dataset directory (pfsspec layout)")
MAX_NOISE_LEVEL = 1000.0  # beyond this float32 spectra overflow
noise_level = click.option("--noise-level", default=1.0, type=click.FloatRange(0, MAX_NOISE_LEVEL),
                           show_default=True, help="noisy = flux + noise_level * sigma * N(0, 1)")


def noise_level_list(text: str) -> list:
    """The sorted levels of a comma list, each checked as ``--noise-level`` is (call it before any work starts)."""
    levels = number_list(text, "noise_levels")
    if levels[-1] > MAX_NOISE_LEVEL:
        raise DistillError(f"noise_levels={text!r}: {levels[-1]:g} is not in the range 0<=x<={MAX_NOISE_LEVEL:g} "
                           "(float32 spectra overflow)")
    return levels
seed = click.option("--seed", default=42, type=int, show_default=True)
executor = click.option("--executor", default="local", type=click.Choice(["local", "slurm"]), show_default=True,
                        help="where steps run: here, or as Slurm jobs (configs/slurm.yaml, docs/cluster.md)")
features = click.option("--features", default="latest", show_default=True,
                        help="extract run id, or latest for this data and noise level")
labels = click.option("--labels", default=",".join(LABELS), show_default=True, help="labels the heads read, comma list")
label = click.option("--label", default="log_g", show_default=True, help=f"one of {', '.join(LABELS)}")
teacher = click.option("--teacher", default="features", show_default=True,
                       help="features (the extract run's), checkpoint path, train_teacher run id, or latest")


def latent(layer_help="layer, or a+b to join layers", pooling_help="global_mean, mean_max, seg_mean_K{k}"):
    """Which teacher latent: layer, pooling and direction."""
    return options(
        click.option("--layer", default="enc_pre_latent", show_default=True, help=layer_help),
        click.option("--pooling", default="seg_mean_K8", show_default=True, help=pooling_help),
        click.option("--direction", default="fwd", type=click.Choice(DIRECTIONS), show_default=True))


class Alpha(click.ParamType):
    """Ridge's penalty: a number >= 0, or ``val`` (chosen on validation from ``heads.RIDGE_ALPHAS``)."""

    name = "alpha"

    def convert(self, value, param, ctx):
        if value == ON_VAL or isinstance(value, float):
            return value
        try:
            alpha = float(value)
        except ValueError:
            alpha = -1.0
        if not 0 <= alpha < float("inf"):
            self.fail(f"{value!r} is neither a number >= 0 nor {ON_VAL!r}", param, ctx)
        return alpha


def alpha(default=1e-3):
    """Ridge's penalty option."""
    return click.option("--alpha", default=default, type=Alpha(), show_default=True,
                        help=f"Ridge penalty, or {ON_VAL} (chosen on validation; the plan's 1e-3 was set for 100k "
                             "spectra)")


def segments(default=STORE_SEGMENTS):
    """How many segment means extraction stores per layer."""
    return click.option("--segments", default=default, type=click.IntRange(1), show_default=True,
                        help="segment means stored per layer, a power of two: probes pool seg_mean_K{k} for k up to it")


head_settings = options(
    alpha(),
    click.option("--num-leaves", default=15, type=click.IntRange(2), show_default=True, help="LightGBM leaves"),
    click.option("--n-estimators", default=50, type=click.IntRange(1), show_default=True, help="LightGBM trees"))


def head_params(alpha, num_leaves, n_estimators, seed, **extra) -> dict:
    """The keyword arguments of ``probe.fit_label`` from the head options."""
    return dict(alpha=alpha, num_leaves=num_leaves, n_estimators=n_estimators, seed=seed, **extra)
