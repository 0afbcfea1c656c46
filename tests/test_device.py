"""Feeding the device: background prefetch keeps order and passes errors on; transfers keep values."""
import numpy as np
import pytest
import torch

from distill.device import prefetch, to_device
from distill.errors import DistillError


def test_prefetch_keeps_order_and_reraises():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise DistillError("row 7: NaN flux")

    with pytest.raises(DistillError, match="row 7"):
        list(prefetch(broken()))


def test_to_device_keeps_values():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = to_device(a, torch.device("cpu"))
    assert t.dtype == torch.float32 and np.array_equal(t.numpy(), a)
