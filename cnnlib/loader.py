"""Minibatches from images that already sit on the device.

A data set small enough for the device's memory (Fashion-MNIST: 55 MB, CIFAR-10: 184 MB as uint8) is moved
there once. Each epoch draws one ``randperm`` and slices minibatches out of it; converting to float,
augmenting, resizing and normalizing happen on the device, batch by batch. There are no worker processes, no
PIL and no per-image Python work, which is where a d2l-style DataLoader spends most of an AlexNet epoch.
The data sets themselves are read by ``fashion_mnist.py`` and ``cifar.py``, from folders ``datafiles.py`` finds.
"""
import contextlib

import torch
import torch.nn.functional as F

from . import distributed
from .utils import SMOKE_TEST_EXAMPLES, SMOKE_TRAIN_EXAMPLES, smoke_mode, try_gpu


def _as_size(resize):
    if resize is None:
        return None
    size = (resize, resize) if isinstance(resize, int) else tuple(resize)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"resize must be a positive int or a (height, width) pair of them, got {resize!r}")
    return size


def _as_channel_stats(normalize, channels, device):
    """``(mean, std)`` with one value per channel -> two float tensors (1, C, 1, 1) on ``device``; None stays."""
    if normalize is None:
        return None
    try:
        mean, std = (torch.as_tensor(v, dtype=torch.float32).flatten() for v in normalize)
    except (TypeError, ValueError):
        raise ValueError(f"normalize must be a pair (mean, std) of per-channel values, got {normalize!r}") from None
    if mean.numel() != channels or std.numel() != channels:
        raise ValueError(f"normalize needs {channels} means and {channels} standard deviations (one per channel), "
                         f"got {mean.numel()} and {std.numel()}")
    if not bool((std > 0).all()) or not bool(torch.isfinite(mean).all()):
        raise ValueError(f"normalize: the standard deviations must be positive and the means finite, got {normalize!r}")
    return mean.view(1, -1, 1, 1).to(device), std.view(1, -1, 1, 1).to(device)


class DeviceLoader:
    """Minibatches ``(X, y)`` from images that already sit on the device.

    ``images``: uint8 (N, C, H, W); ``labels``: int64 (N,). Each batch ``X`` is float32 in [0, 1] with shape
    (B, C, *resize) (or (B, C, H, W) without resize), ``y`` is int64 (B,). The last batch may be smaller.
    ``augment``: a callable X -> X (see ``cnnlib.augment``) applied to each float batch in [0, 1], before
    the resize; it may change H and W (a crop).
    Under ``torchrun`` (``world_size`` > 1) every batch is a *global* batch of ``batch_size`` examples, and this
    rank yields only its contiguous slice of it (:func:`cnnlib.distributed.shard`), so that the slices of all
    ranks at step i together are exactly the batch one process would see at step i. Rank 0's permutation is
    broadcast to every rank each epoch. A shuffled (training) loader skips a last global batch with fewer
    examples than ranks: a rank with nothing to train on would leave the others waiting in DDP's all-reduce
    (at most ``world_size - 1`` examples per epoch, different ones every epoch); a test loader keeps it, and a
    rank whose slice is empty yields nothing for it. ``rank`` and ``world_size`` default to the process group's.
    With ``augment``, each global batch is augmented whole, from a seed drawn (and broadcast) for it at the start
    of the epoch, and each rank keeps its slice: an example's crop or flip does not depend on the rank holding it,
    and the augmented batches of N ranks together are those of one process (each rank spends N times the
    augmentation's compute, small next to the training step).
    ``normalize``: ``(mean, std)``, one value per channel each; after the resize every batch becomes
    ``(X - mean) / std`` channel by channel (test batches too), so it is no longer in [0, 1].
    """

    def __init__(self, images, labels, batch_size, *, shuffle, resize=None, augment=None, normalize=None,
                 rank=None, world_size=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 of shape (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.resize = batch_size, shuffle, _as_size(resize)
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable X -> X (e.g. cnnlib.augment.Compose([...])) or None, "
                            f"got {type(augment).__name__}")
        self.augment = augment
        self.normalize = _as_channel_stats(normalize, images.shape[1], images.device)
        self.rank = distributed.rank() if rank is None else rank
        self.world_size = distributed.world_size() if world_size is None else world_size
        if not (isinstance(self.world_size, int) and self.world_size >= 1
                and isinstance(self.rank, int) and 0 <= self.rank < self.world_size):
            raise ValueError(f"rank must be an int in 0..world_size-1 and world_size a positive int, "
                             f"got rank={self.rank!r}, world_size={self.world_size!r}")

    @property
    def device(self):
        return self.images.device

    @property
    def num_examples(self):
        return len(self.labels)

    @property
    def num_global_batches(self):
        """Steps per epoch, the same on every rank (a training loader's too-small last batch not counted)."""
        batches = -(-self.num_examples // self.batch_size)
        tail = self.num_examples % self.batch_size
        drop_tail = self.shuffle and 0 < tail < self.world_size
        return batches - drop_tail

    def global_batch_size(self, i):
        """Number of examples in global batch ``i`` summed over all ranks."""
        return min(self.batch_size, self.num_examples - i * self.batch_size)

    def __len__(self):
        return self.num_global_batches

    def _epoch_draws(self):
        """This epoch's order of the examples (None without shuffle) and one augmentation seed per global batch
        (None without augment): drawn from the global generator on the device, rank 0's on every rank."""
        n, draws = self.num_examples, []
        if self.shuffle:
            draws.append(torch.randperm(n, device=self.device))
        if self.augment is not None:
            draws.append(torch.randint(2 ** 62, (self.num_global_batches,), device=self.device))
        if not draws:
            return None, None
        drawn = torch.cat(draws)
        if self.world_size > 1:
            distributed.broadcast_(drawn)
        order = drawn[:n] if self.shuffle else None
        seeds = drawn[n if self.shuffle else 0:].tolist() if self.augment is not None else None
        return order, seeds

    def _floats(self, order, start, stop):
        """Examples ``start:stop`` of this epoch's order as float (stop - start, C, H, W) in [0, 1]."""
        idx = order[start:stop] if order is not None else slice(start, stop)
        return self.images[idx].float().div_(255), self.labels[idx]

    def __iter__(self):
        order, seeds = self._epoch_draws()
        for i in range(self.num_global_batches):
            first, last = i * self.batch_size, i * self.batch_size + self.global_batch_size(i)
            start, stop = distributed.shard(first, last, self.rank, self.world_size)
            if start == stop:
                continue
            if self.augment is None:
                X, y = self._floats(order, start, stop)
            else:
                # The whole global batch is augmented from its own seed and this rank keeps its slice, so an
                # example gets the same crop, flip... whichever rank holds it (N ranks train like one process).
                X, y = self._floats(order, first, last)
                with _seeded(self.device, seeds[i]):
                    X = self.augment(X)
                X, y = X[start - first:stop - first], y[start - first:stop - first]
            if self.resize is not None and X.shape[-2:] != self.resize:
                X = F.interpolate(X, size=self.resize, mode="bilinear", align_corners=False)
            if self.normalize is not None:
                mean, std = self.normalize
                X = (X - mean) / std
            yield X, y


@contextlib.contextmanager
def _seeded(device, seed):
    """Inside the block ``device``'s global generator starts from ``seed``; afterwards it is where it was, so the
    draws inside do not move the stream that dropout and the next epoch's order draw from."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        else:
            torch.random.default_generator.manual_seed(seed)
        yield


def device_loaders(read_split, batch_size, resize=None, *, device=None, augment=None, normalize=None,
                   subset=None):
    """The two :class:`DeviceLoader` of a data set, ``(train_iter, test_iter)``, with its data on ``device``.

    ``read_split(train)`` returns one split as CPU tensors, uint8 (N, C, H, W) and int64 (N,); the loaders
    hold copies of them, so editing a loader's tensors never reaches the next load. ``augment``
    goes to the training loader only; ``subset=n`` keeps the first ``n`` examples of each split, and under
    ``CNNLIB_SMOKE=1`` only a few hundred examples are kept, and a line says so. Under ``torchrun`` the
    default device is the local rank's GPU. Shared by :func:`load_fashion_mnist` and ``load_cifar10``.
    """
    device = torch.device(device) if device is not None else try_gpu(distributed.local_rank())
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset < 1):
        raise ValueError(f"subset must be a positive int (number of examples), got {subset!r}")
    n_train = n_test = subset
    if smoke_mode():
        n_train = min(n_train or SMOKE_TRAIN_EXAMPLES, SMOKE_TRAIN_EXAMPLES)
        n_test = min(n_test or SMOKE_TEST_EXAMPLES, SMOKE_TEST_EXAMPLES)
        distributed.print_main(f"[cnnlib] smoke run (CNNLIB_SMOKE=1): {n_train} training and {n_test} test examples")
    loaders = []
    for train, n in ((True, n_train), (False, n_test)):
        images, labels = read_split(train)
        # copies, even on the CPU: read_split's tensors may be a cache that later loads hand out again
        images, labels = images[:n].to(device, copy=True), labels[:n].to(device, copy=True)
        loaders.append(DeviceLoader(images, labels, batch_size, shuffle=train, resize=resize,
                                    augment=augment if train else None, normalize=normalize))
    return tuple(loaders)


def label_names(labels, names, dataset):
    """Turn numeric labels (ints or a tensor of them) into the class names ``names`` of ``dataset``."""
    values = labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)
    bad = [v for v in values if not isinstance(v, int) or not 0 <= v < len(names)]
    if bad:
        raise ValueError(f"{dataset} labels are ints from 0 to {len(names) - 1}, got {bad[:5]}")
    return [names[v] for v in values]
