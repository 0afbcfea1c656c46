"""Torch device choice (CUDA when present, else CPU; ``DISTILL_DEVICE`` overrides) and feeding it."""
import os
import queue
import threading

import torch


def pick_device(name: str | None = None) -> torch.device:
    name = name or os.environ.get("DISTILL_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def to_device(array, device: torch.device) -> torch.Tensor:
    """A numpy array as a tensor on ``device``; on CUDA through pinned memory, copied asynchronously."""
    tensor = torch.as_tensor(array)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def prefetch(iterable, depth: int = 2):
    """Iterate ``iterable`` on a background thread, ``depth`` items ahead, so reading and noise drawing
    overlap the accelerator's work; exceptions re-raise in the consumer."""
    items, done = queue.Queue(depth), object()

    def fill():
        try:
            for item in iterable:
                items.put(item)
            items.put(done)
        except BaseException as e:  # hand it to the consumer
            items.put(e)

    threading.Thread(target=fill, daemon=True).start()
    while (item := items.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
