"""A small CIFAR-10 in exactly the official layout, for tests and for running chapter 16 without the data set.

The real ``cifar-10-batches-py/`` holds five training batches of 10,000 images, a test batch and
``batches.meta``, each a protocol-2 pickle of a dict. The fixture writes the same files with the same keys and
types, only with fewer, random images, so ``cnnlib`` and ``torchvision.datasets.CIFAR10`` can both read it.
"""
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_PER_BATCH = 60  # 300 training images over the five batches
TEST_IMAGES = 150


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 strings (BINSTRING), as the official files, pickled by Python 2, do.

    Python 3's protocol 2 would write them as ``_codecs.encode(...)`` calls instead, a global the real files
    never use. Read back with ``encoding="latin1"`` they become str, which numpy accepts as an array's data.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def _batch(rng, n, label):
    return {
        "batch_label": label,
        "labels": [int(v) for v in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
        "filenames": [f"image_{i:05d}.png" for i in range(n)],
    }


def write_cifar10(parent, seed=0):
    """Write ``parent/cifar-10-batches-py/`` and return that folder."""
    rng = np.random.default_rng(seed)
    folder = Path(parent) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": _batch(rng, TRAIN_PER_BATCH, f"training batch {i} of 5") for i in range(1, 6)}
    batches["test_batch"] = _batch(rng, TEST_IMAGES, "testing batch 1 of 1")
    batches["batches.meta"] = {"num_cases_per_batch": TRAIN_PER_BATCH, "label_names": LABEL_NAMES,
                               "num_vis": 3 * 32 * 32}
    for name, content in batches.items():
        (folder / name).write_bytes(python2_pickle(content))
    return folder


def _as_python2(obj):
    """Python 2 had no separate text type: every str of a batch was a byte string."""
    if isinstance(obj, str):
        return obj.encode("latin1")
    if isinstance(obj, dict):
        return {_as_python2(k): _as_python2(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_as_python2(v) for v in obj]
    return obj


def python2_pickle(content):
    """``content`` pickled as Python 2's cPickle did for the official files (protocol 2, byte strings, numpy 1's
    module name ``numpy.core.multiarray``)."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(_as_python2(content))
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_archive(path, seed=0):
    """Write a ``cifar-10-python.tar.gz`` of the fixture to ``path`` (its parent must exist); return ``path``."""
    source = Path(path).parent / f".fixture-source-{seed}"
    folder = write_cifar10(source, seed)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
    source.rmdir()
    return Path(path)
