"""Fashion-MNIST that lives on the device.

The whole data set is 70,000 28x28 uint8 images (55 MB), small enough to keep on the GPU. Each epoch
draws one ``randperm`` and slices minibatches out of it; converting to float and resizing happen on the
device, batch by batch, with ``F.interpolate``. There are no worker processes, no PIL and no per-image
Python work, which is where a d2l-style DataLoader spends most of an AlexNet epoch.
"""
import functools
import gzip
import os
import shutil
import struct
import urllib.error
import urllib.request
from pathlib import Path

import torch
import torch.nn.functional as F

from . import distributed
from .utils import SMOKE_TEST_EXAMPLES, SMOKE_TRAIN_EXAMPLES, smoke_mode, try_gpu

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://ossci-datasets.s3.amazonaws.com/fashion-mnist/",
]
TEXT_LABELS = ["t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot"]
_IDX_MAGIC = {"images": 2051, "labels": 2049}


class DatasetError(RuntimeError):
    """A data set (Fashion-MNIST, CIFAR-10) is missing, cannot be downloaded, or a file of it is damaged."""


def cache_dir(dataset="fashion-mnist"):
    """The per-user folder where cnnlib downloads a data set (``$XDG_CACHE_HOME/cnnlib/<dataset>``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnlib" / dataset


def data_dirs(root=None, dataset="fashion-mnist"):
    """The folders a data set is looked for in, in order: ``[root]``, else every folder listed in
    ``$CNNLIB_DATA``, else ``[cache_dir(dataset)]``.

    ``CNNLIB_DATA`` is one folder or several separated by ``os.pathsep`` (``:`` on Linux and macOS, like
    ``PATH``), e.g. ``/data/fashion-mnist:/data``; each loader looks in every one for its own files.
    """
    if root is not None:
        return [Path(root).expanduser()]
    listed = [Path(p).expanduser() for p in os.environ.get("CNNLIB_DATA", "").split(os.pathsep) if p]
    return listed or [cache_dir(dataset)]


def data_dir(root=None):
    """Where Fashion-MNIST is downloaded when missing: the first of :func:`data_dirs`."""
    return data_dirs(root)[0]


def _missing_message(folder, missing, reason):
    names = "\n".join(f"  {name}.gz" for name in FILES.values())
    return (
        f"Fashion-MNIST is not in {folder} (missing: {', '.join(missing)}) and {reason}.\n"
        f"Put these four files (from https://github.com/zalandoresearch/fashion-mnist) into one folder:\n"
        f"{names}\n"
        f"then pass that folder as root=... or set the environment variable CNNLIB_DATA to it, e.g.\n"
        f"  export CNNLIB_DATA=/path/to/fashion-mnist"
    )


def _find(folders, name):
    """Path of ``name`` (compressed or not) in one of ``folders``, directly, in ``fashion-mnist/`` or in
    torchvision's ``FashionMNIST/raw`` below it; None if it is nowhere."""
    for folder in folders:
        for sub in (folder, folder / "fashion-mnist", folder / "FashionMNIST" / "raw"):
            for candidate in (sub / name, sub / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
    return None


def _download(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        errors = []
        for mirror in MIRRORS:
            target, part = folder / f"{name}.gz", folder / f"{name}.gz.part"
            try:
                with urllib.request.urlopen(mirror + name + ".gz", timeout=30) as response, open(part, "wb") as f:
                    shutil.copyfileobj(response, f)
                part.replace(target)
                break
            except (urllib.error.URLError, OSError) as err:  # no network, HTTP error, time-out
                part.unlink(missing_ok=True)
                errors.append(f"{mirror}: {getattr(err, 'reason', err)}")
        else:
            raise DatasetError(_missing_message(
                folder, [name], "downloading it failed (" + "; ".join(errors) + ")")) from None


def dataset_files(root=None, download=True):
    """Return the paths of the four Fashion-MNIST files, downloading them into the cache if needed.

    Returns a dict with keys ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.
    Raises :class:`DatasetError` with instructions when they are missing and cannot be downloaded.
    """
    folders = data_dirs(root)
    folder = folders[0]
    found = {key: _find(folders, name) for key, name in FILES.items()}
    missing = [FILES[k] for k, p in found.items() if p is None]
    if missing:
        if not download:
            raise DatasetError(_missing_message(folder, missing, "download=False was given"))
        try:
            _download(folder, missing)
        except PermissionError:
            raise DatasetError(_missing_message(folder, missing, f"{folder} is not writable")) from None
        found = {key: path or _find(folders, FILES[key]) for key, path in found.items()}
    return found


def _read_idx(path, kind):
    """Read an IDX file (``kind`` is ``"images"`` or ``"labels"``) into a uint8 tensor, checking it whole."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DatasetError(f"{path} is truncated or corrupt ({err}). Delete it and download it again.") from None
    ndim = 3 if kind == "images" else 1
    header = 4 + 4 * ndim
    if len(raw) < header or struct.unpack(">I", raw[:4])[0] != _IDX_MAGIC[kind]:
        raise DatasetError(f"{path} is not an IDX {kind} file (bad header). Delete it and download it again.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(torch.tensor(shape).prod())
    if len(raw) != expected:
        raise DatasetError(f"{path} is truncated or corrupt: {len(raw)} bytes after decompression, "
                           f"{expected} expected for shape {shape}. Delete it and download it again.")
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=2)
def _read_split(images_path, labels_path):
    images = _read_idx(images_path, "images")
    labels = _read_idx(labels_path, "labels")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} holds {len(images)} images but {labels_path} "
                           f"{len(labels)} labels; one of them is damaged.")
    if int(labels.max()) > 9:
        raise DatasetError(f"{labels_path} holds label {int(labels.max())}; Fashion-MNIST has labels 0-9.")
    return images.unsqueeze(1), labels.long()


def read_fashion_mnist(train=True, root=None, download=True):
    """Return ``(images, labels)`` of one split as CPU tensors: uint8 (N, 1, 28, 28) and int64 (N,)."""
    files = dataset_files(root, download)
    split = "train" if train else "test"
    return _read_split(files[f"{split}_images"], files[f"{split}_labels"])


def torchvision_root(root=None, download=True):
    """Return a folder that ``torchvision.datasets.FashionMNIST(folder)`` reads without downloading.

    torchvision wants the *uncompressed* files in ``<folder>/FashionMNIST/raw``; this decompresses them
    into the writable per-user cache, since the data folder itself may be read-only.
    """
    raw = cache_dir() / "torchvision" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for key, path in dataset_files(root, download).items():
        target = raw / FILES[key]
        if not target.is_file():
            tmp = target.with_suffix(".part")
            with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(target)
    return raw.parent.parent


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

    def __iter__(self):
        n = self.num_examples
        order = torch.randperm(n, device=self.device) if self.shuffle else None
        if order is not None and self.world_size > 1:
            distributed.broadcast_(order)
        for i in range(self.num_global_batches):
            start, stop = distributed.shard(i * self.batch_size, i * self.batch_size + self.global_batch_size(i),
                                            self.rank, self.world_size)
            if start == stop:
                continue
            idx = order[start:stop] if self.shuffle else slice(start, stop)
            X = self.images[idx].float().div_(255)
            if self.augment is not None:
                X = self.augment(X)
            if self.resize is not None and X.shape[-2:] != self.resize:
                X = F.interpolate(X, size=self.resize, mode="bilinear", align_corners=False)
            if self.normalize is not None:
                mean, std = self.normalize
                X = (X - mean) / std
            yield X, self.labels[idx]


def device_loaders(read_split, batch_size, resize=None, *, device=None, augment=None, normalize=None,
                   subset=None):
    """The two :class:`DeviceLoader` of a data set, ``(train_iter, test_iter)``, with its data on ``device``.

    ``read_split(train)`` returns one split as CPU tensors, uint8 (N, C, H, W) and int64 (N,). ``augment``
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
        images, labels = images[:n].to(device), labels[:n].to(device)
        loaders.append(DeviceLoader(images, labels, batch_size, shuffle=train, resize=resize,
                                    augment=augment if train else None, normalize=normalize))
    return tuple(loaders)


def load_fashion_mnist(batch_size, resize=None, *, root=None, device=None, download=True, subset=None,
                       augment=None):
    """Load Fashion-MNIST onto ``device`` and return ``(train_iter, test_iter)`` of :class:`DeviceLoader`.

    Batches are ``X``: float32 (B, 1, H, W) in [0, 1], with H = W = 28 or ``resize``; ``y``: int64 (B,).
    The training loader reshuffles every epoch. ``subset=n`` keeps the first ``n`` examples of each split.
    ``augment`` (a callable X -> X, see ``cnnlib.augment``) is applied to training batches only.
    Under ``CNNLIB_SMOKE=1`` only a few hundred examples are kept, and a line says so.
    """
    return device_loaders(lambda train: read_fashion_mnist(train, root, download), batch_size, resize,
                          device=device, augment=augment, subset=subset)


def load_data_fashion_mnist(batch_size, resize=None):
    """d2l's name and signature for :func:`load_fashion_mnist`."""
    return load_fashion_mnist(batch_size, resize)


def label_names(labels, names, dataset):
    """Turn numeric labels (ints or a tensor of them) into the class names ``names`` of ``dataset``."""
    values = labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)
    bad = [v for v in values if not isinstance(v, int) or not 0 <= v < len(names)]
    if bad:
        raise ValueError(f"{dataset} labels are ints from 0 to {len(names) - 1}, got {bad[:5]}")
    return [names[v] for v in values]


def get_fashion_mnist_labels(labels):
    """Turn numeric labels (ints or a tensor of them, 0-9) into Fashion-MNIST class names."""
    return label_names(labels, TEXT_LABELS, "Fashion-MNIST")
