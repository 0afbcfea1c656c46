"""The research plan's acceptance thresholds (docs/research-plan.md section 4), in one place.

Verdicts, figures and the report read them from here; R^2 values are test-set coefficients of determination.
"""
# Stage 1: is the teacher latent worth anything for log g?
STAGE_1_RIDGE = 0.5  # latent Ridge R^2 >= this passes Stage 1
STAGE_1B_LIGHTGBM = 0.25  # latent LightGBM R^2 >= this passes Stage 1b (and warrants 1.2)

# Stage A: where does the log g information come from?
EXTRA_INFORMATION = 0.1  # R^2 of the residual above this is real extra information

# Stage 2: can a flux-only student imitate the teacher latent?
COSINE_PASS = 0.9  # 2.1: validation cosine similarity
UNDERFIT_NMSE = 0.8  # 2.1: training NMSE still near 1 (= predicting the mean): the latent was not learned
OVERFIT_RATIO = 2.0  # 2.1: validation NMSE this many times the training NMSE
TEACHER_FRACTION = 0.9  # 2.2: student R^2 >= 0.9 x teacher R^2
ANALYSIS_GAP = 0.1  # 2.2: this far below the teacher needs analysis

# Stage 3: end to end against baselines
FAIL_DELTA = 0.05  # 3.1: this much R^2 below a baseline fails
MIN_BIN = 20  # 3.1: bins with fewer test spectra are shown but not judged
FEW_LABELS = 5000  # 3.3: "few labels": the label-free student must beat every comparator at each size up to this

# 1.2 / 3.2: robustness to noise
SLOWER = 0.02  # a latent degrades more slowly when it loses this much less R^2 than raw flux ...
USEFUL = 0.05  # ... from a training-level R^2 above this (an R^2 below it reads nothing)

# Stage 4: risks and sanity checks
ERROR_HELPS = 0.05  # 4.1: up to this R^2 lost without sigma: error helps but does not dominate
ERROR_DOMINATES = 0.1  # 4.1 / Stage 4: more than this: the error carries much of the log g information
SIGMA_USED = 0.05  # 4.2: an R^2 drop above this when sigma is shuffled: the teacher really uses sigma
FALSE_ALARM = 0.01  # 4.3: the label-shuffle guard's false-alarm rate on an honest pipeline (permutation test)
