"""The field's own estimators as peers of the student: The Cannon, the maximum-likelihood template fit, a CNN.

``SEES_SIGMA``: whether a method reads the stored per-pixel error. ``BOUNDED``: whether the Fisher ceiling bounds it.
The ceiling bounds readers of the noisy flux whose noise variance is known; the template fit reads sigma only as that
variance (its model of the mean flux never sees it), so the bound covers it, while a network fed sigma could read the
labels from sigma itself.
"""
METHODS = ("cannon", "template_fit", "cnn")
SEES_SIGMA = {"cannon": False, "template_fit": True, "cnn": False}
BOUNDED = {"cannon": True, "template_fit": True, "cnn": True}
DESCRIPTIONS = {
    "cannon": "The Cannon (quadratic in the labels, pixel weights from the training scatter)",
    "template_fit": "template fit with the simulator's model (likelihood weighted by sigma)",
    "cnn": "StarNet-style CNN on raw noisy flux",
}
