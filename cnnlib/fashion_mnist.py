"""Fashion-MNIST: its four files found, downloaded, checked and read, then served on the device.

70,000 grayscale 28x28 images of clothing in 10 classes (60,000 for training, 10,000 for testing), stored as
four gzipped IDX files. They are looked for in ``root=...``, else the folders of ``$CNNLIB_DATA``, else the
per-user cache (see ``datafiles.data_dirs``), read whole and checked, and handed to ``loader.device_loaders``,
which keeps them on the device.
"""
import functools
import gzip
import shutil
import struct
import urllib.error
import urllib.request

import torch

from .datafiles import DatasetError, cache_dir, data_dirs, one_process_at_a_time, writable_folder, write_atomically
from .loader import device_loaders, label_names

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


def data_dir(root=None):
    """Where Fashion-MNIST is downloaded when missing: the first of ``datafiles.data_dirs`` that can be written."""
    return writable_folder(data_dirs(root), "fashion-mnist")


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
    """Download ``<name>.gz`` for each of ``names`` into ``folder``, trying the mirrors in order.

    Of several processes that do this at once (``torchrun``'s ranks), one downloads while the others wait, then
    find the files complete (see ``datafiles.one_process_at_a_time``).
    """
    with one_process_at_a_time(folder):
        for name in names:
            target = folder / f"{name}.gz"
            if target.is_file():  # another process downloaded it while this one waited
                continue
            errors = []
            for mirror in MIRRORS:
                try:
                    with urllib.request.urlopen(mirror + name + ".gz", timeout=30) as response:
                        write_atomically(target, lambda f: shutil.copyfileobj(response, f))
                    break
                except (urllib.error.URLError, OSError) as err:  # no network, HTTP error, time-out
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
    folder = data_dir(root)
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
    """Return ``(images, labels)`` of one split as CPU tensors: uint8 (N, 1, 28, 28) and int64 (N,).

    The tensors are the caller's own: editing them leaves what the next call returns as it is.
    """
    images, labels = _cached_split(train, root, download)
    return images.clone(), labels.clone()  # the cache's copy stays untouched


def _cached_split(train, root, download):
    """The tensors of one split as cached (shared by every caller: never hand them out uncopied)."""
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
            with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as src:
                write_atomically(target, lambda dst: shutil.copyfileobj(src, dst))
    return raw.parent.parent


def load_fashion_mnist(batch_size, resize=None, *, root=None, device=None, download=True, subset=None,
                       augment=None):
    """Load Fashion-MNIST onto ``device`` and return ``(train_iter, test_iter)`` of :class:`DeviceLoader`.

    Batches are ``X``: float32 (B, 1, H, W) in [0, 1], with H = W = 28 or ``resize``; ``y``: int64 (B,).
    The training loader reshuffles every epoch. ``subset=n`` keeps the first ``n`` examples of each split.
    ``augment`` (a callable X -> X, see ``cnnlib.augment``) is applied to training batches only.
    Under ``CNNLIB_SMOKE=1`` only a few hundred examples are kept, and a line says so.
    """
    return device_loaders(lambda train: _cached_split(train, root, download), batch_size, resize,
                          device=device, augment=augment, subset=subset)


def load_data_fashion_mnist(batch_size, resize=None):
    """d2l's name and signature for :func:`load_fashion_mnist`."""
    return load_fashion_mnist(batch_size, resize)


def get_fashion_mnist_labels(labels):
    """Turn numeric labels (ints or a tensor of them, 0-9) into Fashion-MNIST class names."""
    return label_names(labels, TEXT_LABELS, "Fashion-MNIST")
