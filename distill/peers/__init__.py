"""The field's own estimators as peers of the student: The Cannon, the maximum-likelihood template fit, a CNN.

Each peer is one ``Peer`` (``peer.py``) in a module of its own, registered in ``PEERS``; the peer entry point,
``main`` and the report ask the object. ``sees_sigma``: whether a peer reads the stored per-pixel error.
``bounded``: whether the Fisher ceiling bounds it. The ceiling bounds readers of the noisy flux whose noise variance
is known; the template fit reads sigma only as that variance (its model of the mean flux never sees it), so the
bound covers it, while a network fed sigma could read the labels from sigma itself.
"""
from .cannon_peer import CANNON
from .cnn_peer import CNN
from .template_fit_peer import TEMPLATE_FIT

PEERS = {peer.name: peer for peer in (CANNON, TEMPLATE_FIT, CNN)}  # name -> Peer, in the report's order

METHODS = tuple(PEERS)  # one attribute of every peer, for readers that take one at a time
SEES_SIGMA = {name: peer.sees_sigma for name, peer in PEERS.items()}
BOUNDED = {name: peer.bounded for name, peer in PEERS.items()}
DESCRIPTIONS = {name: peer.description for name, peer in PEERS.items()}
