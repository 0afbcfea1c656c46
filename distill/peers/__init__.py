"""The field's own estimators as peers of the student: The Cannon, the maximum-likelihood template fit, a CNN.

``SEES_SIGMA``: whether a method reads the stored per-pixel error (then the Fisher ceiling, which bounds readers of the
noisy flux, does not bound it).
"""
METHODS = ("cannon", "template_fit", "cnn")
SEES_SIGMA = {"cannon": False, "template_fit": True, "cnn": False}
DESCRIPTIONS = {
    "cannon": "The Cannon (quadratic in the labels, pixel weights from the training scatter)",
    "template_fit": "template fit with the simulator's model (likelihood weighted by sigma)",
    "cnn": "StarNet-style CNN on raw noisy flux",
}
