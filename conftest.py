"""Settings for every test run: chapter notebooks run in smoke mode (CNNLIB_SMOKE=1) unless told otherwise,
and a small CIFAR-10 in the official layout is available to them (CIFAR-10 itself is not on the test machines).

Kernels started by nbval inherit this environment, so nothing here may change how a notebook shows figures.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("CNNLIB_SMOKE", "1")
pytest_plugins = ["tests.nbval_exercises"]  # each chapter's exercises checked in nbval's kernel

# Fashion-MNIST's folder as given, read before the CIFAR-10 fixture's folder is appended to CNNLIB_DATA.
FASHION_MNIST = Path(os.environ["CNNLIB_DATA"].split(os.pathsep)[0]) if os.environ.get("CNNLIB_DATA") else None
MARKERS = {
    "needs_data": "set CNNLIB_DATA to a folder with the four Fashion-MNIST .gz files",
    "needs_cuda": "needs a CUDA GPU",
}


def pytest_configure(config):
    for name, reason in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: skipped unless available ({reason})")


def pytest_runtest_setup(item):
    """``@pytest.mark.needs_data`` and ``@pytest.mark.needs_cuda`` skip a test, saying what it needs."""
    if item.get_closest_marker("needs_data") and not (FASHION_MNIST and FASHION_MNIST.is_dir()):
        pytest.skip(MARKERS["needs_data"])
    if item.get_closest_marker("needs_cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip(MARKERS["needs_cuda"])


@pytest.fixture
def fashion_mnist_dir():
    """The folder holding the four Fashion-MNIST ``.gz`` files (the test is skipped without one)."""
    if not (FASHION_MNIST and FASHION_MNIST.is_dir()):
        pytest.skip(MARKERS["needs_data"])
    return FASHION_MNIST

_cifar_fixture = None


def pytest_collection_finish(session):
    """Append a folder holding the CIFAR-10 fixture to ``CNNLIB_DATA`` for the rest of the session.

    Done after collection, so test modules that read ``CNNLIB_DATA`` at import time still see the folder they
    were given. A real CIFAR-10 in a folder listed earlier is found first. Without ``CNNLIB_DATA``,
    Fashion-MNIST's per-user cache is listed first, so it is still downloaded there and kept.
    """
    global _cifar_fixture
    from cnnlib.datafiles import cache_dir
    from tests.cifar_fixture import write_cifar10

    _cifar_fixture = tempfile.mkdtemp(prefix="cnnlib-cifar10-fixture-")
    write_cifar10(_cifar_fixture)
    listed = os.environ.get("CNNLIB_DATA") or str(cache_dir())
    os.environ["CNNLIB_DATA"] = os.pathsep.join([listed, _cifar_fixture])


def pytest_unconfigure(config):
    if _cifar_fixture is not None:
        shutil.rmtree(_cifar_fixture, ignore_errors=True)
