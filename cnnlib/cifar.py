"""CIFAR-10 that lives on the device, read from torchvision's layout.

CIFAR-10 is 60,000 32x32 colour images in 10 classes (50,000 for training, 10,000 for testing): 184 MB as
uint8, small enough to keep on the GPU like Fashion-MNIST (see ``loader.py``). The files are the official
Python version, as torchvision keeps them::

    <folder>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta

Where it is looked for: ``root=...``, else each folder listed in ``$CNNLIB_DATA`` (several folders separated
by ``os.pathsep``, like ``PATH``), else the per-user cache ``~/.cache/cnnlib/cifar-10``. When it is nowhere,
``cifar-10-python.tar.gz`` is used if it lies in one of those folders, else downloaded into the first
writable one (or the cache): it is written to a temporary file of its own, checked against its published MD5,
unpacked into a temporary folder and renamed into place only when complete, so nothing half-extracted is left
behind. Under ``torchrun`` one process downloads and unpacks while the others wait for it.

The batches are pickles. Unpickling can run arbitrary code, so they are read with an unpickler that accepts
only what a CIFAR batch holds (dicts, lists, strings, ints and a numpy uint8 array), then checked key by key.
"""
import functools
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from .datafiles import DatasetError, data_dirs, one_process_at_a_time, temporary_sibling, writable_folder
from .loader import device_loaders, label_names

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_BYTES = 170498071
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
TEXT_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PIXELS = 3 * 32 * 32


def _numpy_reconstruct():
    try:  # numpy >= 2 (also the name that pickles written by numpy 2 use)
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# The only globals a CIFAR batch refers to: what rebuilds one numpy array. Both spellings of numpy's core module
# appear in the wild (numpy 1 wrote numpy.core, numpy 2 writes numpy._core).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    """Refuses every global except the three that rebuild a numpy array, so a pickle cannot run code."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR-10 batch never does")
        return _ALLOWED_GLOBALS[module, name]()


def _fix_hint(path):
    return (f"Delete {path.parent} and load again to download CIFAR-10 afresh, or unpack {ARCHIVE} "
            f"from {URL} there yourself.")


def _unpickle(path):
    """The dict of one CIFAR batch file, keys as str; :class:`DatasetError` for a missing or damaged file."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing: a complete {FOLDER} folder holds {', '.join(TRAIN_BATCHES)}, "
                           f"{TEST_BATCH} and {META}. {_fix_hint(path)}")
    try:
        with open(path, "rb") as f:
            content = _BatchUnpickler(f, encoding="latin1").load()
    except Exception as err:  # a damaged pickle can fail in many ways (EOFError, UnpicklingError, ValueError...)
        raise DatasetError(f"{path} is not a CIFAR-10 batch: unpickling failed ({type(err).__name__}: {err}). "
                           f"{_fix_hint(path)}") from None
    if not isinstance(content, dict):
        raise DatasetError(f"{path} is not a CIFAR-10 batch: it holds a {type(content).__name__}, a dict was "
                           f"expected. {_fix_hint(path)}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in content.items()}


def _read_batch(path):
    """One batch file -> uint8 (N, 3, 32, 32) and int64 (N,) CPU tensors, after checking keys, dtypes, shapes."""
    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        found = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                 else type(data).__name__)
        raise DatasetError(f"{path}: 'data' must be a uint8 array of shape (N, {PIXELS}) (10000 rows in the real "
                           f"data set), found {found}. {_fix_hint(path)}")
    if (not isinstance(labels, list) or len(labels) != len(data)
            or not all(type(v) is int and 0 <= v <= 9 for v in labels)):
        raise DatasetError(f"{path}: 'labels' must be a list of {len(data)} ints from 0 to 9 (one per image), "
                           f"found {type(labels).__name__} {str(labels)[:60]}. {_fix_hint(path)}")
    # Rows are the red, green and blue 32x32 planes one after the other, so a reshape gives (N, C, H, W).
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.tensor(labels, dtype=torch.int64)


def _complete(folder):
    return all((folder / name).is_file() for name in TRAIN_BATCHES + [TEST_BATCH, META])


def _download(archive):
    """Download :data:`URL` to a new temporary file next to ``archive`` and return its path, checked in size
    and MD5 (removed again when the download or the check fails)."""
    part = temporary_sibling(archive)
    md5, size = hashlib.md5(), 0
    try:
        with open(part, "xb") as f, urllib.request.urlopen(URL, timeout=60) as response:
            while chunk := response.read(1 << 20):
                md5.update(chunk)
                size += len(chunk)
                f.write(chunk)
    except (urllib.error.URLError, OSError) as err:  # no network, HTTP error, time-out, disk full
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"CIFAR-10 is not on this machine and downloading {URL} failed ({getattr(err, 'reason', err)}). "
            f"Without network: download {ARCHIVE} elsewhere and put it (or the {FOLDER} folder unpacked from "
            f"it) into {archive.parent}, or into a folder you pass as root=... or list in CNNLIB_DATA.") from None
    try:
        _check_archive(part, size, md5.hexdigest(), "the download from " + URL)
    except DatasetError:
        part.unlink(missing_ok=True)
        raise
    return part


def _check_archive(path, size, md5, what):
    if size != ARCHIVE_BYTES:
        raise DatasetError(f"{path} ({what}) is truncated: {size} bytes, {ARCHIVE_BYTES} expected. "
                           f"Delete it and download it again (the connection was probably cut).")
    if md5 != ARCHIVE_MD5:
        raise DatasetError(f"{path} ({what}) is damaged or not the CIFAR-10 archive: its MD5 is {md5}, "
                           f"{ARCHIVE_MD5} expected. Delete it and download it again from {URL}.")


def _file_md5(path):
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def _extract(archive, folder):
    """Unpack ``archive``'s ``cifar-10-batches-py/`` into ``folder``, all or nothing."""
    tmp = Path(tempfile.mkdtemp(prefix=".cifar-10-unpacking-", dir=folder))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).parts[:1] == (FOLDER,)
                       and ".." not in Path(m.name).parts]
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python 3.12+, some 3.9+
            for member in members:
                tar.extract(member, tmp, set_attrs=False, **safe)
        if not _complete(tmp / FOLDER):
            raise DatasetError(f"{archive} lacks files of {FOLDER}/ ({', '.join(TRAIN_BATCHES)}, {TEST_BATCH}, "
                               f"{META} expected). Delete it and download it again from {URL}.")
        try:
            os.replace(tmp / FOLDER, folder / FOLDER)
        except OSError:
            if not _complete(folder / FOLDER):
                raise
            # else another process unpacked it first (where no lock could be taken): that copy is as good
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DatasetError(f"{archive} is truncated or corrupt: unpacking failed ({err}). "
                           f"Delete it and download it again from {URL}.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cifar10_dir(root=None, download=True):
    """The ``cifar-10-batches-py`` folder, unpacked from a local archive or downloaded when missing.

    Looks in ``root``, else the folders of ``$CNNLIB_DATA``, else the per-user cache (see the module
    docstring). Raises :class:`DatasetError` with instructions when it is missing and cannot be obtained.
    """
    folders = data_dirs(root, "cifar-10")
    for folder in folders:
        if (folder / FOLDER).is_dir():
            return folder / FOLDER
    for folder in folders:
        archive = folder / ARCHIVE
        if archive.is_file():
            with one_process_at_a_time(folder):  # torchrun's other processes wait, then find it unpacked
                if not (folder / FOLDER).is_dir():
                    _check_archive(archive, archive.stat().st_size, _file_md5(archive), "found on disk")
                    _extract(archive, folder)
            return folder / FOLDER
    places = ", ".join(str(f) for f in folders)
    if not download:
        raise DatasetError(f"CIFAR-10 ({FOLDER}/ or {ARCHIVE}) is not in {places} and download=False was given. "
                           f"Download {URL} and put it there, or pass download=True.")
    target = writable_folder(folders, "cifar-10")
    with one_process_at_a_time(target):  # one process downloads; torchrun's others wait, then find it unpacked
        if not (target / FOLDER).is_dir():
            part = _download(target / ARCHIVE)
            try:
                _extract(part, target)
            finally:
                part.unlink(missing_ok=True)
    return target / FOLDER


@functools.lru_cache(maxsize=2)
def _read_split(folder, train):
    """All batches of one split, concatenated: uint8 (N, 3, 32, 32), int64 (N,)."""
    parts = [_read_batch(folder / name) for name in (TRAIN_BATCHES if train else [TEST_BATCH])]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def read_cifar10(train=True, root=None, download=True):
    """Return ``(images, labels)`` of one split as CPU tensors: uint8 (N, 3, 32, 32) and int64 (N,).

    The real data set has N = 50000 (``train=True``) and 10000 (``train=False``), in the files' order. The
    tensors are the caller's own: editing them leaves what the next call returns as it is.
    """
    images, labels = _read_split(cifar10_dir(root, download), bool(train))
    return images.clone(), labels.clone()  # the cache's copy stays untouched


def load_cifar10(batch_size, resize=None, *, root=None, device=None, augment=None, normalize=None,
                 download=True, subset=None):
    """Load CIFAR-10 onto ``device`` and return ``(train_iter, test_iter)`` of :class:`DeviceLoader`.

    Batches are ``X``: float32 (B, 3, H, W), H = W = 32 or ``resize``, in [0, 1] unless ``normalize =
    (mean, std)`` (three values each) asks for ``(X - mean) / std`` per channel (both splits, after the
    resize); ``y``: int64 (B,) class indices (names: :func:`get_cifar10_labels`). ``augment`` (a callable
    X -> X, see ``cnnlib.augment``) is applied to training batches only, before the resize. The training
    loader reshuffles every epoch. ``subset=n`` keeps the first ``n`` examples of each split.
    Under ``CNNLIB_SMOKE=1`` only a few hundred examples are kept, and a line says so.
    """
    return device_loaders(lambda train: _read_split(cifar10_dir(root, download), bool(train)), batch_size,
                          resize, device=device, augment=augment, normalize=normalize, subset=subset)


def get_cifar10_labels(labels):
    """Turn numeric labels (ints or a tensor of them, 0-9) into CIFAR-10 class names."""
    return label_names(labels, TEXT_LABELS, "CIFAR-10")
