"""cnnlib.fashion_mnist and cnnlib.loader: reading, validating, locating and batching Fashion-MNIST."""
import functools
import gzip
import http.server
import os
import shutil
import struct
import threading

import pytest
import torch
import torch.nn.functional as F

import cnnlib
from cnnlib import datafiles, fashion_mnist, loader
from tests.concurrent_download import SlowServer, run_together



@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CNNLIB_SMOKE", "0")


@pytest.fixture
def copy_of_data(tmp_path, fashion_mnist_dir):
    folder = tmp_path / "fm"
    shutil.copytree(fashion_mnist_dir, folder)
    return folder


@pytest.mark.needs_data
def test_full_data_shapes_types_and_order():
    train_iter, test_iter = cnnlib.load_fashion_mnist(256, device="cpu")
    assert (train_iter.num_examples, test_iter.num_examples) == (60000, 10000)
    assert (len(train_iter), len(test_iter)) == (235, 40)
    X, y = next(iter(test_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32
    assert y.shape == (256,) and y.dtype == torch.int64
    assert 0 <= X.min() and X.max() <= 1
    images, labels = fashion_mnist.read_fashion_mnist(train=True)
    assert labels[0] == 9  # the first training image is an ankle boot
    assert abs(images.float().div(255).mean().item() - 0.2860) < 1e-3  # the data set's known mean


@pytest.mark.needs_data
def test_train_loader_reshuffles_and_covers_every_example_once():
    train_iter, _ = cnnlib.load_fashion_mnist(1000, device="cpu", subset=3000)
    first = torch.cat([y for _, y in train_iter])
    second = torch.cat([y for _, y in train_iter])
    assert len(first) == len(second) == 3000
    assert not torch.equal(first, second), "the training order must change between epochs"
    assert torch.equal(first.bincount(minlength=10), second.bincount(minlength=10))
    assert torch.equal(first.sort().values, train_iter.labels.sort().values)


@pytest.mark.needs_data
def test_test_loader_keeps_order():
    _, test_iter = cnnlib.load_fashion_mnist(100, device="cpu", subset=300)
    assert torch.equal(torch.cat([y for _, y in test_iter]), test_iter.labels)


@pytest.mark.needs_data
def test_resize_on_device_matches_torchvision_pil_resize():
    from PIL import Image
    from torchvision import transforms

    _, test_iter = cnnlib.load_fashion_mnist(4, resize=224, device="cpu", subset=4)
    X, _ = next(iter(test_iter))
    assert X.shape == (4, 1, 224, 224)
    pipeline = transforms.Compose([transforms.Resize(224), transforms.ToTensor()])
    reference = pipeline(Image.fromarray(test_iter.images[0, 0].numpy()))
    # PIL rounds to uint8 after resizing, so the two differ by at most one grey level (plus float noise).
    assert (X[0] - reference).abs().max() <= 1 / 255 + 1e-6


def test_bad_arguments_are_explained():
    images = torch.zeros(10, 1, 28, 28, dtype=torch.uint8)
    labels = torch.zeros(10, dtype=torch.int64)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        loader.DeviceLoader(images, labels, 0, shuffle=True)
    with pytest.raises(ValueError, match="resize must be a positive int"):
        loader.DeviceLoader(images, labels, 2, shuffle=True, resize=(0, 5))
    with pytest.raises(ValueError, match="images must be uint8"):
        loader.DeviceLoader(images.float(), labels, 2, shuffle=True)
    with pytest.raises(ValueError, match="labels must have shape"):
        loader.DeviceLoader(images, labels[:5], 2, shuffle=True)
    with pytest.raises(ValueError, match="subset must be a positive int"):
        cnnlib.load_fashion_mnist(2, subset=0)


@pytest.mark.needs_data
def test_smoke_mode_shrinks_the_data_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("CNNLIB_SMOKE", "1")
    train_iter, test_iter = cnnlib.load_fashion_mnist(64, device="cpu")
    assert (train_iter.num_examples, test_iter.num_examples) == (256, 128)
    assert "smoke run (CNNLIB_SMOKE=1)" in capsys.readouterr().out


@pytest.mark.needs_data
def test_read_only_gz_folder_is_read_without_writing_to_it(copy_of_data, monkeypatch):
    monkeypatch.setenv("CNNLIB_DATA", str(copy_of_data))
    before = sorted(p.name for p in copy_of_data.iterdir())
    train_iter, _ = cnnlib.load_data_fashion_mnist(128)
    assert train_iter.num_examples == 60000
    assert sorted(p.name for p in copy_of_data.iterdir()) == before


@pytest.mark.needs_data
def test_torchvision_root_decompresses_into_the_cache(copy_of_data, tmp_path):
    from torchvision.datasets import FashionMNIST

    root = fashion_mnist.torchvision_root(copy_of_data)
    assert str(root).startswith(str(tmp_path / "cache"))
    test_set = FashionMNIST(root, train=False, download=False)
    ours, labels = fashion_mnist.read_fashion_mnist(train=False, root=copy_of_data)
    assert len(test_set) == 10000
    assert torch.equal(test_set.data[:5], ours[:5, 0]) and torch.equal(test_set.targets, labels)


def test_missing_data_without_network_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "MIRRORS", ["http://127.0.0.1:9/"])  # nothing listens there: no network
    with pytest.raises(datafiles.DatasetError) as err:
        cnnlib.load_fashion_mnist(32, root=tmp_path / "empty")
    message = str(err.value)
    for name in fashion_mnist.FILES.values():
        assert f"{name}.gz" in message
    assert "CNNLIB_DATA" in message and "downloading it failed" in message
    assert not list((tmp_path / "empty").glob("*.part")), "a failed download must not leave partial files"


def test_download_false_names_the_missing_files(tmp_path):
    with pytest.raises(datafiles.DatasetError, match="train-images-idx3-ubyte"):
        fashion_mnist.dataset_files(tmp_path, download=False)


def test_download_from_a_mirror(tmp_path, monkeypatch, fashion_mnist_dir):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(fashion_mnist_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(fashion_mnist, "MIRRORS", ["http://127.0.0.1:9/", f"http://127.0.0.1:{server.server_port}/"])
        images, labels = fashion_mnist.read_fashion_mnist(train=False, root=tmp_path / "dl")
    finally:
        server.shutdown()
    assert images.shape == (10000, 1, 28, 28) and labels.shape == (10000,)
    expected = sorted(f"{n}.gz" for n in fashion_mnist.FILES.values())
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == expected


@pytest.mark.needs_data
def test_truncated_file_is_reported_not_loaded(copy_of_data):
    path = copy_of_data / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100000])
    with pytest.raises(datafiles.DatasetError, match="truncated or corrupt"):
        fashion_mnist.read_fashion_mnist(train=False, root=copy_of_data)


@pytest.mark.needs_data
def test_wrong_length_and_bad_header_are_reported(copy_of_data):
    images = copy_of_data / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(raw[:-784]))  # one image short: a valid gzip stream of the wrong size
    with pytest.raises(datafiles.DatasetError, match="expected for shape"):
        fashion_mnist.read_fashion_mnist(train=False, root=copy_of_data)
    images.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + raw[4:]))  # a labels magic number on an image file
    with pytest.raises(datafiles.DatasetError, match="bad header"):
        fashion_mnist.read_fashion_mnist(train=False, root=copy_of_data)


def test_labels_to_names():
    assert cnnlib.get_fashion_mnist_labels(torch.tensor([0, 9])) == ["t-shirt", "ankle boot"]
    assert cnnlib.get_fashion_mnist_labels([1, 2]) == ["trouser", "pullover"]
    with pytest.raises(ValueError, match="0 to 9"):
        cnnlib.get_fashion_mnist_labels([10])


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path / "env"))
    assert fashion_mnist.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert fashion_mnist.data_dir() == tmp_path / "env"
    monkeypatch.delenv("CNNLIB_DATA")
    assert fashion_mnist.data_dir() == tmp_path / "cache" / "cnnlib" / "fashion-mnist"


def test_device_loader_converts_and_resizes():
    images = torch.arange(2 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4)
    batches = loader.DeviceLoader(images, torch.tensor([3, 4]), 2, shuffle=False, resize=8)
    X, y = next(iter(batches))
    expected = F.interpolate(images.float() / 255, size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.allclose(X, expected) and y.tolist() == [3, 4]


def write_small_fashion_mnist(folder, n=50):
    """The four files of a Fashion-MNIST with ``n`` random images per split, valid IDX and gzipped."""
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for split in ("train", "t10k"):
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (n,), dtype=torch.uint8, generator=generator)
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">IIII", 2051, n, 28, 28) + images.numpy().tobytes()))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">II", 2049, n) + labels.numpy().tobytes()))
    return folder


def test_processes_that_find_the_data_missing_at_once_download_it_once_and_all_load_it(tmp_path):
    """What torchrun does: every process loads at the same moment into the same folder."""
    www = write_small_fashion_mnist(tmp_path / "www")
    target = tmp_path / "data"
    with SlowServer(www) as server:
        results = run_together(
            setup=f"from cnnlib import fashion_mnist; fashion_mnist.MIRRORS = [{server.url!r}]",
            body=f"images, labels = fashion_mnist.read_fashion_mnist(False, root={str(target)!r}); "
                 f"print(tuple(images.shape))",
            tmp_path=tmp_path)
    for result in results:
        assert result.returncode == 0 and result.stdout.strip() == "(50, 1, 28, 28)", result.stderr
    expected = sorted(f"{name}.gz" for name in fashion_mnist.FILES.values())
    assert sorted(p.name for p in target.iterdir()) == expected, "nothing but the four files may be left"
    for name in expected:
        assert (target / name).read_bytes() == (www / name).read_bytes()
    assert dict(server.requests) == {name: 1 for name in expected}, "one process downloads, the others wait"


def test_download_goes_to_the_first_listed_folder_that_can_be_written(tmp_path, monkeypatch):
    www = write_small_fashion_mnist(tmp_path / "www")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable, writable = blocker / "fashion-mnist", tmp_path / "writable"  # nobody can create a folder in a file
    monkeypatch.setenv("CNNLIB_DATA", os.pathsep.join([str(unwritable), str(writable)]))
    assert fashion_mnist.data_dir() == writable
    with SlowServer(www, pause=0) as server:
        monkeypatch.setattr(fashion_mnist, "MIRRORS", [server.url])
        images, _ = fashion_mnist.read_fashion_mnist(train=False)
    assert images.shape == (50, 1, 28, 28)
    assert sorted(p.name for p in writable.iterdir()) == sorted(f"{n}.gz" for n in fashion_mnist.FILES.values())


def test_editing_what_a_loader_returned_does_not_change_the_next_load(tmp_path):
    folder = write_small_fashion_mnist(tmp_path / "fm")
    images, labels = fashion_mnist.read_fashion_mnist(train=False, root=folder)
    expected = images.clone(), labels.clone()
    images.zero_()
    labels.fill_(3)
    train_iter, test_iter = cnnlib.load_fashion_mnist(10, root=folder, device="cpu")
    test_iter.images.fill_(7)
    again = fashion_mnist.read_fashion_mnist(train=False, root=folder)
    assert torch.equal(again[0], expected[0]) and torch.equal(again[1], expected[1])
