"""Probe heads that read labels from features: OLS, Ridge, LightGBM, MLP and attention pooling.

Features are standardised with training statistics only (and optionally reduced
by PCA fitted on train only), so no validation or test row can change a fitted model.
"""
import copy

import numpy as np
import torch
from lightgbm import LGBMRegressor, early_stopping, log_evaluation
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from .errors import DistillError

HEADS = ("ols", "ridge", "lightgbm", "mlp")
SHARED_HEADS = ("ridge", "lightgbm")  # the heads every comparison fits on each feature set
ON_VAL = "val"  # Ridge alpha chosen on validation
RIDGE_ALPHAS = tuple(10.0 ** np.arange(-3, 6))
"""1e-3 (the plan's alpha of record, set for 100k training spectra) .. 1e5; raw flux on 1,500 spectra picks 1e3."""
BIN_SAMPLE = 20_000
"""Rows LightGBM samples to place its bins; its default (200,000) keeps the sample as float64,
about two float32 copies of a 4096-pixel matrix, while 20,000 is enough for 255 bins."""


def make_pipeline(head: str, pca: int = 0, alpha=1e-3, num_leaves=15, n_estimators=50, learning_rate=0.1,
                  min_child_samples=20, seed=42, hidden=256, epochs=200, patience=20, lr=1e-3):
    """An unfitted sklearn pipeline: StandardScaler -> [PCA] -> head, fitted on train only.

    Without PCA, Ridge standardises inside (``GramRidge``) and LightGBM needs no
    scaling (trees are scale-invariant), so neither copies the feature matrix.
    """
    if head not in HEADS:
        raise DistillError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")
    lean = not pca and head in ("ridge", "lightgbm")
    model = GramRidge(alpha) if head == "ridge" and (lean or alpha == ON_VAL) else {
        "ols": lambda: LinearRegression(),
        "ridge": lambda: Ridge(alpha=alpha),
        "lightgbm": lambda: LGBMRegressor(num_leaves=num_leaves, n_estimators=n_estimators, learning_rate=learning_rate,
                                          min_child_samples=min_child_samples, subsample_for_bin=BIN_SAMPLE,
                                          random_state=seed, verbose=-1),
        "mlp": lambda: MLPRegressor(hidden=hidden, epochs=epochs, patience=patience, lr=lr, seed=seed),
    }[head]()
    steps = [] if lean else [("scale", StandardScaler())] + ([("pca", PCA(pca, random_state=seed))] if pca else [])
    return Pipeline(steps + [("head", model)])


def fit(pipeline: Pipeline, x_train, y_train, x_val=None, y_val=None, early_stop=False):
    """Fit on train; validation data only steers early stopping (LightGBM with ``early_stop``, MLP always) or
    chooses Ridge's alpha (``alpha="val"``)."""
    head = pipeline.named_steps["head"]
    on_val = isinstance(head, GramRidge) and head.alpha == ON_VAL
    if on_val or isinstance(head, MLPRegressor) or (early_stop and isinstance(head, LGBMRegressor)):
        xt, xv = x_train, x_val
        if len(pipeline.steps) > 1:
            prefix = Pipeline(pipeline.steps[:-1]).fit(x_train)
            xt, xv = prefix.transform(x_train), prefix.transform(x_val)
        if isinstance(head, LGBMRegressor):
            head.fit(xt, y_train, eval_set=[(xv, y_val)],
                     callbacks=[early_stopping(10, verbose=False), log_evaluation(0)])
        else:
            head.fit(xt, y_train, xv, y_val)
        return pipeline
    return pipeline.fit(x_train, y_train)


class GramRidge(RegressorMixin, BaseEstimator):
    """StandardScaler + Ridge(alpha) in one, from the Gram matrix accumulated in row batches.

    Same solution as ``Pipeline([StandardScaler(), Ridge(alpha)])`` but memory is
    O(d^2) beside the input: the (n, d) float32 matrix is never copied or upcast whole.
    With fewer rows than features (raw flux at demo size: 2,000 x 4,096) it solves the
    n x n dual system instead, w = Z^T (Z Z^T + alpha I)^-1 y: the same w, ~3x faster.

    ``alpha="val"``: every alpha of ``RIDGE_ALPHAS`` from one eigendecomposition of that
    system, keeping the one of highest validation R^2 (``alpha_``; test never consulted).
    ``y`` of shape (n, k): k targets share the system and its decomposition (alpha per
    target), e.g. the label-shuffle guard's permutations of one label.
    """

    def __init__(self, alpha=1e-3, batch_size=4096):
        self.alpha, self.batch_size = alpha, batch_size

    def fit(self, x, y, x_val=None, y_val=None):
        y = np.asarray(y, dtype=np.float64)
        columns = y.reshape(len(y), -1)
        self.intercept_, self.n_features_in_ = columns.mean(0), x.shape[1]
        if self.alpha != ON_VAL:
            alphas = np.full(columns.shape[1], float(self.alpha))
            self.coef_ = self._solver(x, columns)(alphas[0])
        else:
            if x_val is None:
                raise DistillError("alpha=val chooses the Ridge penalty on validation, but no validation split was "
                                   "given")
            solve, scores = self._solver(x, columns, path=True), []
            y_val = np.broadcast_to(np.asarray(y_val).reshape(len(x_val), -1), (len(x_val), columns.shape[1]))
            for alpha in RIDGE_ALPHAS:
                self.coef_ = solve(alpha)
                scores.append(r2_score(y_val, self.predict(x_val), multioutput="raw_values"))
            alphas = np.asarray(RIDGE_ALPHAS)[np.argmax(scores, axis=0)]
            self.coef_ = np.empty_like(self.coef_)
            for alpha in np.unique(alphas):
                self.coef_[:, alphas == alpha] = solve(alpha)[:, alphas == alpha]
        self.alpha_ = alphas if y.ndim == 2 else float(alphas[0])
        if y.ndim == 1:
            self.coef_, self.intercept_ = self.coef_[:, 0], float(self.intercept_[0])
        return self

    def _solver(self, x, y, path=False):
        """alpha -> coefficients (d, k) on the standardised features for targets y (n, k) (sets mean_ and
        scale_); ``path``: one eigendecomposition serves every alpha."""
        n, d = x.shape
        if n < d:
            z = np.asarray(x, dtype=np.float64)
            self.mean_ = z.mean(0)
            sd = z.std(0)
            self.scale_ = np.where(sd > 0, sd, 1.0)
            z = (z - self.mean_) / self.scale_
            system, rhs, back = z @ z.T, y - y.mean(0), lambda v: z.T @ v
        else:
            (system, rhs), back = self._gram(x, y), lambda v: v
        if not path:
            return lambda alpha: back(np.linalg.solve(system + alpha * np.eye(len(system)), rhs))
        values, vectors = np.linalg.eigh(system)
        values, projected = np.clip(values, 0, None)[:, None], vectors.T @ rhs
        return lambda alpha: back(vectors @ (projected / (values + alpha)))

    def _gram(self, x, y):
        """(Z^T Z, Z^T y) of the standardised features and targets y (n, k), accumulated in row batches (sets mean_
        and scale_)."""
        n, d = x.shape
        gram, xsum, xy = np.zeros((d, d)), np.zeros(d), np.zeros((d, y.shape[1]))
        for i in range(0, n, self.batch_size):
            block = np.asarray(x[i:i + self.batch_size], dtype=np.float64)
            gram += block.T @ block
            xsum += block.sum(0)
            xy += block.T @ y[i:i + self.batch_size]
        self.mean_ = xsum / n
        centred = gram - n * np.outer(self.mean_, self.mean_)
        var = np.clip(np.diag(centred) / n, 0, None)
        self.scale_ = np.where(var > 0, np.sqrt(var), 1.0)
        return (centred / np.outer(self.scale_, self.scale_),
                (xy - n * np.outer(self.mean_, y.mean(0))) / self.scale_[:, None])

    def predict(self, x):
        """(n,) predictions, or (n, k) for k targets."""
        w = (self.coef_.T / self.scale_).T
        parts = [np.asarray(x[i:i + self.batch_size], dtype=np.float64) @ w for i in range(0, len(x), self.batch_size)]
        return np.concatenate(parts or [np.empty((0,) + w.shape[1:])]) - self.mean_ @ w + self.intercept_


class MLPRegressor(RegressorMixin, BaseEstimator):
    """Features -> hidden -> 1 with GELU and dropout 0.1, AdamW, early stopping on validation R^2."""

    def __init__(self, hidden=256, epochs=200, patience=20, lr=1e-3, batch_size=256, seed=42):
        self.hidden, self.epochs, self.patience = hidden, epochs, patience
        self.lr, self.batch_size, self.seed = lr, batch_size, seed

    def fit(self, x, y, x_val, y_val):
        torch.manual_seed(self.seed)
        x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
        self.mean_, self.std_ = float(y.mean()), float(y.std()) or 1.0
        self.net_ = nn.Sequential(nn.Linear(x.shape[1], self.hidden), nn.GELU(), nn.Dropout(0.1),
                                  nn.Linear(self.hidden, 1))
        self.best_epoch_ = train_early_stopped(self.net_, x, (y - self.mean_) / self.std_,
                                               torch.as_tensor(x_val, dtype=torch.float32),
                                               np.asarray(y_val), lambda out: out[:, 0] * self.std_ + self.mean_,
                                               self.epochs, self.patience, self.lr, self.batch_size, self.seed)
        return self

    def predict(self, x):
        self.net_.eval()
        with torch.no_grad():
            return self.net_(torch.as_tensor(x, dtype=torch.float32))[:, 0].numpy() * self.std_ + self.mean_


def train_early_stopped(net, x, y, x_val, y_val, decode, epochs, patience, lr, batch_size, seed):
    """AdamW on MSE; keep the weights of the epoch with the best validation R^2. Returns that epoch."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch = -np.inf, None, 0
    for epoch in range(epochs):
        net.train()
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = ((net(x[idx]).squeeze(-1) - y[idx]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            score = r2_score(y_val, decode(net(x_val)).numpy())
        if score > best:
            best, best_state, best_epoch = score, copy.deepcopy(net.state_dict()), epoch
        elif epoch - best_epoch >= patience:
            break
    net.load_state_dict(best_state)
    return best_epoch


class AttentionPooling(nn.Module):
    """A learned query attends over wavelength positions of a (C, L) map; the pooled C-vector feeds a linear head."""

    def __init__(self, channels: int, length: int):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(channels, length))
        self.key = nn.Conv1d(channels, channels, 1)
        self.query = nn.Parameter(torch.randn(channels) / channels**0.5)
        self.out = nn.Linear(channels, 1)

    def weights(self, maps):
        return torch.softmax(torch.einsum("c,bcl->bl", self.query, self.key(maps + self.position)), dim=-1)

    def forward(self, maps):
        return self.out(torch.einsum("bl,bcl->bc", self.weights(maps), maps))


class AttentionRegressor:
    """Attention pooling + linear head on whole (standardised) maps, early-stopped on validation R^2."""

    def __init__(self, epochs=200, patience=20, lr=3e-3, batch_size=256, seed=42):
        self.epochs, self.patience, self.lr, self.batch_size, self.seed = epochs, patience, lr, batch_size, seed

    def fit(self, maps, y, maps_val, y_val):
        torch.manual_seed(self.seed)
        self.mu_ = maps.mean(axis=(0, 2), keepdims=True)
        self.sd_ = maps.std(axis=(0, 2), keepdims=True) + 1e-8
        x = torch.as_tensor((maps - self.mu_) / self.sd_, dtype=torch.float32)
        xv = torch.as_tensor((maps_val - self.mu_) / self.sd_, dtype=torch.float32)
        self.mean_, self.std_ = float(np.mean(y)), float(np.std(y)) or 1.0
        self.net_ = AttentionPooling(maps.shape[1], maps.shape[2])
        yt = torch.as_tensor((np.asarray(y) - self.mean_) / self.std_, dtype=torch.float32)
        self.best_epoch_ = train_early_stopped(self.net_, x, yt, xv, np.asarray(y_val),
                                               lambda out: out[:, 0] * self.std_ + self.mean_,
                                               self.epochs, self.patience, self.lr, self.batch_size, self.seed)
        return self

    def predict(self, maps):
        self.net_.eval()
        with torch.no_grad():
            x = torch.as_tensor((maps - self.mu_) / self.sd_, dtype=torch.float32)
            return self.net_(x)[:, 0].numpy() * self.std_ + self.mean_
