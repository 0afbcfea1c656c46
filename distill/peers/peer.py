"""What a peer is: one object naming an estimator of the field, what it reads, how it fits and predicts, and the
options and data it needs. ``distill.peers`` registers every peer; the entry points ask the object."""
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Option:
    """A setting only some peers read: ``--{name}`` on the peer entry point (an MLproject parameter of that name).
    ``minimum``: the least integer allowed (None: any value of the default's type)."""
    name: str
    default: Any
    help: str
    minimum: int | None = None


TRAINING_SPECTRA = Option("n_train", 0, "training spectra (0: all)", minimum=0)


def no_diagnosis(model, estimate, ds, **settings) -> None:
    """No metrics, tables or figures of the peer's own."""


def no_total(settings: dict) -> None:
    """A progress spinner: the peer cannot say how many steps it takes."""
    return None


def no_step_params(scale: dict, n_test: int) -> dict:
    """The peer's step in ``main`` takes the entry point's defaults."""
    return {}


@dataclass(frozen=True)
class Peer:
    """One of the field's estimators beside the student.

    ``fit(ds, progress=None, **settings) -> model`` learns from the training split; ``predict(model, ds,
    progress=None, **settings) -> {split: DataFrame}`` labels the first ``n_spectra`` test spectra (and any other
    split it scores), one column per asked label at least. ``diagnose(model, estimate, ds, **settings)`` adds its
    own metrics (keyed ``{name}_...``), tables and figures to the ``Estimate``. ``settings`` hold noise_level,
    n_spectra, seed, labels and every peer's options; each function reads what it needs.

    ``sees_sigma``: it reads the stored per-pixel error. ``bounded``: the Fisher ceiling bounds it (it reads the
    noisy flux, and sigma at most as the noise variance). ``inside_box``: its labels never leave the simulator's
    label box. ``needs_simulator``: it fits only spectra the built-in simulator made. ``options``: the settings only
    some peers read. ``progress_total(settings)``: the length of its progress bar (None: a spinner).
    ``step_params(scale, n_test)``: what ``main`` passes its step at a scale (a ``SCALES`` entry).
    """
    name: str
    description: str
    sees_sigma: bool
    bounded: bool
    fit: Callable
    predict: Callable
    diagnose: Callable = no_diagnosis
    inside_box: bool = False
    needs_simulator: bool = False
    options: tuple = ()
    progress_total: Callable = no_total
    step_params: Callable = no_step_params


def options_by_name(peers) -> dict:
    """name -> (Option, names of the peers that read it), in the peers' order; peers sharing a name share the
    Option."""
    found = {}
    for peer in peers:
        for option in peer.options:
            known, readers = found.setdefault(option.name, (option, []))
            if known != option:
                raise ValueError(f"option {option.name!r}: {peer.name} and {readers[0]} declare it differently")
            readers.append(peer.name)
    return found
