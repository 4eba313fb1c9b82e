"""Small helpers shared by the rest of cnnlib: devices, timing, seeding and the smoke switch."""
import os
import random
import time

import torch

SMOKE_TRAIN_EXAMPLES = 256
SMOKE_TEST_EXAMPLES = 128


def smoke_mode():
    """True when ``CNNLIB_SMOKE`` is set to a true value (1, true, yes, on).

    Smoke mode shrinks Fashion-MNIST to a few hundred examples and every training to one epoch, so that
    CI can run each chapter on two CPU cores. Notebook code stays the same; the library announces it.
    """
    value = os.environ.get("CNNLIB_SMOKE", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"CNNLIB_SMOKE={value!r} is not understood; set it to 1 (smoke run) or 0 (full run)")


def try_gpu(i=0):
    """Return ``cuda:i`` if that GPU exists, else the CPU (d2l's name for the same helper)."""
    if torch.cuda.is_available() and torch.cuda.device_count() > i:
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")


def try_all_gpus():
    """Return every visible GPU, or ``[cpu]`` when there is none."""
    gpus = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    return gpus or [torch.device("cpu")]


def set_seed(seed):
    """Seed Python, and torch on every device, so that a run can be repeated."""
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


class Timer:
    """Record several running times (wall clock, seconds)."""

    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.perf_counter()

    def stop(self):
        """Stop the timer, record the interval and return it."""
        self.times.append(time.perf_counter() - self.tik)
        return self.times[-1]

    def avg(self):
        return sum(self.times) / len(self.times) if self.times else 0.0

    def sum(self):
        return sum(self.times)

    def cumsum(self):
        total, out = 0.0, []
        for t in self.times:
            total += t
            out.append(total)
        return out


class Accumulator:
    """Sum ``n`` running quantities, e.g. loss sum, correct predictions and example count."""

    def __init__(self, n):
        if n < 1:
            raise ValueError(f"Accumulator needs at least one slot, got n={n}")
        self.data = [0.0] * n

    def add(self, *args):
        if len(args) != len(self.data):
            raise ValueError(f"Accumulator holds {len(self.data)} values, add() got {len(args)}")
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]
