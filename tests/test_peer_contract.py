"""Every registered peer keeps the contract the entry points rely on: it declares what it is, fits on tiny simulated
data and labels the test subset with finite values of the right shape, keeps inside the label box when it says so,
and the peer entry point offers exactly the registered peers and their options."""
import dataclasses

import click
import numpy as np
import pytest

from distill.data import LABELS, open_dataset
from distill.peers import PEERS, template_fit
from distill.peers.estimate import run
from distill.peers.peer import Option, Peer, options_by_name
from entrypoints import main as main_entry
from entrypoints import peer as peer_entry

FAST = dict(noise_level=1.0, n_spectra=4, seed=0, labels=["log_g"], starts=1, epochs=1, workers=1)
FLAGS = ("sees_sigma", "bounded", "inside_box", "needs_simulator")
HOOKS = ("fit", "predict", "diagnose", "progress_total", "step_params")


def settings() -> dict:
    """Every peer option at its default, then the fast settings of a tiny run."""
    return {name: option.default for name, (option, _) in options_by_name(PEERS.values()).items()} | FAST


def declaration_faults(peer) -> list[str]:
    """What a peer fails to declare: its name, description, flags, functions and options."""
    if not isinstance(peer, Peer):
        return [f"{peer!r} is not a Peer"]
    faults = [] if peer.name.isidentifier() else [f"name {peer.name!r} is not an identifier"]
    if not (isinstance(peer.description, str) and peer.description.strip()):
        faults.append("no description")
    faults += [f"{flag} is not a bool" for flag in FLAGS if not isinstance(getattr(peer, flag), bool)]
    faults += [f"{hook} is not callable" for hook in HOOKS if not callable(getattr(peer, hook))]
    faults += [f"option {o!r} is not an Option named by an identifier" for o in peer.options
               if not (isinstance(o, Option) and o.name.isidentifier())]
    return faults


def prediction_faults(peer, ds, asked: dict) -> list[str]:
    """What goes wrong when the peer runs: missing or misshapen predictions, values that are not finite or leave
    the label box it promises to keep, metrics not keyed by its name."""
    est = run(peer, ds, **asked)
    test = est.predictions.get("test")
    if test is None:
        return ["no test predictions"]
    faults = [] if len(test) == asked["n_spectra"] else [f"{len(test)} test rows for {asked['n_spectra']} spectra"]
    for split, frame in est.predictions.items():
        if len(frame) > len(ds[split]):
            faults.append(f"{split}: {len(frame)} rows, more than the split holds")
        for label in asked["labels"]:
            if label not in frame:
                faults.append(f"{split}: no {label} column")
            elif not np.isfinite(frame[label].to_numpy(float)).all():
                faults.append(f"{split}: {label} not finite")
        box = [(k, lo, hi) for k, lo, hi in zip(LABELS, template_fit.LO, template_fit.HI) if k in frame]
        if peer.inside_box and any(((frame[k] < lo) | (frame[k] > hi)).any() for k, lo, hi in box):
            faults.append(f"{split}: labels outside the box it promises to keep")
    if not all(np.isfinite(s) and s >= 0 for s in (est.fit_seconds, est.predict_seconds)):
        faults.append("fit or predict time not a finite number of seconds")
    faults += [f"metric {k} not keyed {peer.name}_..." for k in est.metrics if not k.startswith(f"{peer.name}_")]
    faults += [f"metric {k} not finite" for k, v in est.metrics.items() if not np.isfinite(v)]
    return faults


@pytest.fixture(scope="module")
def tiny(tiny_data):
    return open_dataset(tiny_data, labels=LABELS)


@pytest.mark.parametrize("name", list(PEERS))
def test_a_registered_peer_declares_itself_and_labels_the_test_subset(name, tiny):
    peer = PEERS[name]
    assert peer.name == name and declaration_faults(peer) == []
    assert prediction_faults(peer, tiny, settings()) == []
    assert peer.progress_total(settings()) is None or isinstance(peer.progress_total(settings()), int)


@pytest.mark.parametrize("name", list(PEERS))
def test_main_passes_a_peer_only_options_its_entry_point_knows(name):
    known = {p.name for p in peer_entry.main.params}
    for scale in main_entry.SCALES.values():
        assert set(PEERS[name].step_params(scale, 32)) <= known


def test_the_peer_entry_point_offers_the_registered_peers_and_their_options():
    params = {p.name: p for p in peer_entry.main.params if isinstance(p, click.Option)}
    assert params["method"].default.split(",") == list(PEERS)
    shared = options_by_name(PEERS.values())
    for name, (option, readers) in shared.items():
        assert params[name].default == option.default and params[name].help.startswith(", ".join(readers))
    common = {"method", "data", "noise_level", "labels", "n_spectra", "seed"}
    assert set(params) == common | set(shared), "an option no registered peer declares, or one missing"


def planted(defect: str):
    """The Cannon with one defect planted."""
    cannon = PEERS["cannon"]
    if defect == "one row short":
        return dataclasses.replace(cannon, predict=lambda *a, **k: {"test": cannon.predict(*a, **k)["test"][1:]})
    if defect == "not finite":
        return dataclasses.replace(cannon, predict=lambda *a, **k: {"test": cannon.predict(*a, **k)["test"] * np.nan})
    if defect == "outside the box it keeps":
        return dataclasses.replace(cannon, inside_box=True,
                                   predict=lambda *a, **k: {"test": cannon.predict(*a, **k)["test"] + 1e4})
    return dataclasses.replace(cannon, sees_sigma="no", description="")  # flags and description undeclared


@pytest.mark.parametrize("defect, named", [("one row short", "3 test rows for 4 spectra"), ("not finite", "not finite"),
                                           ("outside the box it keeps", "outside the box"),
                                           ("undeclared", "sees_sigma is not a bool")])
def test_the_contract_catches_a_planted_defect(defect, named, tiny):
    peer = planted(defect)
    faults = declaration_faults(peer) + prediction_faults(peer, tiny, settings())
    assert any(named in fault for fault in faults), faults
