"""A standard supervised 1D CNN on raw noisy flux: StarNet (Fabbro et al. 2018, MNRAS 475, 2978).

Two convolutions (4 and 16 filters, kernel 8, ReLU), max-pooling by 4, dense layers of 256 and 128 (ReLU), one output
per label. It is trained by ``distill.student.train.DistillTrainer`` with ``lambda_z = 0``: the student's noise
protocol (a fresh draw every epoch, each split's fixed draw for evaluation), per-pixel standardisation and early
stopping on validation, so only the architecture differs from the supervised end-to-end baseline.
"""
from torch import nn

from ..student.model import starnet_body


class StarNet(nn.Module):
    """``forward(x (B, 1, P)) -> (features (B, 128), y_hat (B, n_targets))``; ``head`` maps features to y_hat, as the
    trainer expects of a student. The layers are ``starnet_body``'s, the ones the ``starnet`` student distils with."""

    def __init__(self, n_pixels: int, n_targets: int = 1, filters=(4, 16), kernel: int = 8, pool: int = 4,
                 dense=(256, 128)):
        super().__init__()
        self.config = dict(n_pixels=n_pixels, n_targets=n_targets, filters=list(filters), kernel=kernel, pool=pool,
                           dense=list(dense))
        self.encoder = starnet_body(1, n_pixels, dense, filters, kernel, pool)
        self.head = nn.Linear(dense[-1], n_targets)

    def forward(self, x):
        z = self.encoder(x)
        return z, self.head(z)
