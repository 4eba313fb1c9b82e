"""cnnlib.cifar: reading torchvision's CIFAR-10 layout safely, locating it, downloading it, and its loaders."""
import functools
import hashlib
import http.server
import os
import pickle
import threading

import numpy as np
import pytest
import torch

import cnnlib
from cnnlib import cifar, datafiles, fashion_mnist
from tests.concurrent_download import SlowServer, run_together
from tests.cifar_fixture import TEST_IMAGES, TRAIN_PER_BATCH, python2_pickle, write_archive, write_cifar10



@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache, full-size runs, and no cached reads from another test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CNNLIB_SMOKE", "0")
    monkeypatch.delenv("CNNLIB_DATA", raising=False)
    cifar._read_split.cache_clear()
    yield
    cifar._read_split.cache_clear()


@pytest.fixture
def fixture_root(tmp_path):
    write_cifar10(tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on a free port serving ``tmp_path / "www"``; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", www
    httpd.shutdown()
    httpd.server_close()


def serve_archive(monkeypatch, server, content=None, md5=None, size=None):
    """Put the fixture archive (or ``content``) on the server; point cnnlib at it and at its MD5 and size."""
    url, www = server
    path = write_archive(www / cifar.ARCHIVE)
    if content is not None:
        path.write_bytes(content)
    raw = path.read_bytes()
    monkeypatch.setattr(cifar, "URL", url + cifar.ARCHIVE)
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", md5 or hashlib.md5(raw).hexdigest())
    monkeypatch.setattr(cifar, "ARCHIVE_BYTES", size or len(raw))
    return raw


def leftovers(folder):
    """Everything a download or an unpacking may leave behind in ``folder`` besides the data itself."""
    return sorted(p.name for p in folder.iterdir() if p.name != cifar.FOLDER) if folder.exists() else []


def test_cnnlib_and_torchvision_read_the_same_pixels_and_labels(fixture_root, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)  # per-file MD5s of the real data
    for train, n in ((True, 5 * TRAIN_PER_BATCH), (False, TEST_IMAGES)):
        reference = tv_cifar.CIFAR10(str(fixture_root), train=train, download=False)
        images, labels = cnnlib.read_cifar10(train, root=fixture_root)
        assert images.dtype == torch.uint8 and images.shape == (n, 3, 32, 32)
        assert labels.dtype == torch.int64 and labels.shape == (n,)
        assert torch.equal(images.permute(0, 2, 3, 1), torch.from_numpy(reference.data))  # theirs is (N, H, W, C)
        assert labels.tolist() == reference.targets
    assert reference.classes == cifar.TEXT_LABELS


def test_loaders_batches_normalisation_and_augmentation_on_training_only(fixture_root):
    seen = []

    def mark(X):
        seen.append(X.shape)
        return torch.ones_like(X)

    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.5)
    train_iter, test_iter = cnnlib.load_cifar10(64, root=fixture_root, device="cpu", augment=mark,
                                                normalize=(mean, std))
    assert (train_iter.num_examples, test_iter.num_examples) == (5 * TRAIN_PER_BATCH, TEST_IMAGES)
    X, y = next(iter(train_iter))
    assert X.shape == (64, 3, 32, 32) and y.dtype == torch.int64 and seen == [(64, 3, 32, 32)]
    expected = (1 - torch.tensor(mean)) / torch.tensor(std)  # augmented to ones, then normalised per channel
    assert torch.allclose(X, expected.view(1, 3, 1, 1).expand_as(X))
    images, labels = cnnlib.read_cifar10(False, root=fixture_root)
    X, y = next(iter(test_iter))
    assert len(seen) == 1, "the test loader must never augment"
    plain = images[:64].float() / 255
    assert torch.allclose(X, (plain - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    assert torch.equal(y, labels[:64])

    train_iter, _ = cnnlib.load_cifar10(32, resize=40, root=fixture_root, device="cpu", subset=100)
    X, _ = next(iter(train_iter))
    assert train_iter.num_examples == 100 and X.shape == (32, 3, 40, 40) and 0 <= X.min() and X.max() <= 1


def test_smoke_mode_shrinks_and_says_so(fixture_root, monkeypatch, capsys):
    monkeypatch.setenv("CNNLIB_SMOKE", "1")
    train_iter, test_iter = cnnlib.load_cifar10(64, root=fixture_root, device="cpu")
    assert (train_iter.num_examples, test_iter.num_examples) == (256, 128)
    assert "smoke run (CNNLIB_SMOKE=1)" in capsys.readouterr().out


@pytest.mark.parametrize("normalize, message", [
    ((0.5, 0.5), "3 means and 3 standard deviations"),
    (((0.5,) * 3, (0.2, 0.0, 0.2)), "must be positive"),
    ("mean", "pair"),
])
def test_bad_normalisation_is_explained(fixture_root, normalize, message):
    with pytest.raises(ValueError, match=message):
        cnnlib.load_cifar10(64, root=fixture_root, device="cpu", normalize=normalize)


def test_cnnlib_data_lists_several_folders(tmp_path, fixture_root, monkeypatch):
    fashion = tmp_path / "fm"
    fashion.mkdir()
    monkeypatch.setenv("CNNLIB_DATA", os.pathsep.join([str(fashion), "", str(fixture_root)]))
    assert datafiles.data_dirs() == [fashion, fixture_root]  # empty entries are ignored, as in PATH
    assert fashion_mnist.data_dir() == fashion  # the first writable folder: Fashion-MNIST downloads there
    assert cifar.cifar10_dir(download=False) == fixture_root / cifar.FOLDER
    monkeypatch.delenv("CNNLIB_DATA")
    assert datafiles.data_dirs(dataset="cifar-10") == [tmp_path / "cache" / "cnnlib" / "cifar-10"]
    assert datafiles.data_dirs(fixture_root, "cifar-10") == [fixture_root]


def test_fashion_mnist_is_found_in_a_fashion_mnist_subfolder_of_any_listed_folder(tmp_path, fixture_root,
                                                                                monkeypatch, fashion_mnist_dir):
    parent = tmp_path / "datasets"
    (parent / "fashion-mnist").mkdir(parents=True)
    for name in fashion_mnist.FILES.values():
        (parent / "fashion-mnist" / f"{name}.gz").symlink_to(fashion_mnist_dir / f"{name}.gz")
    monkeypatch.setenv("CNNLIB_DATA", os.pathsep.join([str(fixture_root), str(parent)]))
    files = fashion_mnist.dataset_files(download=False)
    assert files["test_images"] == parent / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    assert cifar.cifar10_dir(download=False) == fixture_root / cifar.FOLDER


def test_download_is_checked_unpacked_and_leaves_only_the_data(tmp_path, server, monkeypatch, fixture_root):
    serve_archive(monkeypatch, server)
    images, labels = cnnlib.read_cifar10(True)  # nothing anywhere: downloads into the per-user cache
    cache = tmp_path / "cache" / "cnnlib" / "cifar-10"
    assert (cache / cifar.FOLDER).is_dir() and leftovers(cache) == []
    reference, reference_labels = cnnlib.read_cifar10(True, root=fixture_root)  # the archive holds the same
    assert torch.equal(images, reference) and torch.equal(labels, reference_labels)


def test_archive_put_by_hand_is_checked_and_unpacked_and_kept(tmp_path, server, monkeypatch):
    raw = serve_archive(monkeypatch, server)
    monkeypatch.setattr(cifar, "URL", "http://127.0.0.1:9/nothing-here")  # must not be needed
    folder = tmp_path / "by-hand"
    folder.mkdir()
    (folder / cifar.ARCHIVE).write_bytes(raw)
    assert cifar.cifar10_dir(folder) == folder / cifar.FOLDER
    assert leftovers(folder) == [cifar.ARCHIVE]


def test_no_network_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens there
    with pytest.raises(datafiles.DatasetError) as err:
        cnnlib.load_cifar10(64, root=tmp_path / "empty")
    message = str(err.value)
    assert "downloading http://127.0.0.1:9/" in message and cifar.ARCHIVE in message and "CNNLIB_DATA" in message
    assert leftovers(tmp_path / "empty") == [], "a failed download must leave nothing behind"


def test_truncated_download_is_reported_and_removed(tmp_path, server, monkeypatch):
    raw = serve_archive(monkeypatch, server)
    (server[1] / cifar.ARCHIVE).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(datafiles.DatasetError, match=rf"truncated: {len(raw) // 2} bytes, {len(raw)} expected"):
        cifar.cifar10_dir(tmp_path / "target")
    assert leftovers(tmp_path / "target") == [] and not (tmp_path / "target" / cifar.FOLDER).exists()


def test_md5_mismatch_is_reported_and_removed(tmp_path, server, monkeypatch):
    serve_archive(monkeypatch, server, md5="0" * 32)
    with pytest.raises(datafiles.DatasetError, match="MD5 is [0-9a-f]{32}, 0{32} expected"):
        cifar.cifar10_dir(tmp_path / "target")
    assert leftovers(tmp_path / "target") == [] and not (tmp_path / "target" / cifar.FOLDER).exists()


def test_archive_that_fails_to_unpack_leaves_nothing_half_extracted(tmp_path, server, monkeypatch):
    good = serve_archive(monkeypatch, server)
    damaged = good[: len(good) - 200]  # the end of the gzip stream is gone; size and MD5 made to match it
    serve_archive(monkeypatch, server, content=damaged)
    with pytest.raises(datafiles.DatasetError, match="truncated or corrupt: unpacking failed"):
        cifar.cifar10_dir(tmp_path / "target")
    assert leftovers(tmp_path / "target") == [] and not (tmp_path / "target" / cifar.FOLDER).exists()


def test_download_false_says_where_it_looked(tmp_path):
    with pytest.raises(datafiles.DatasetError, match=f"not in {tmp_path / 'nowhere'} and download=False"):
        cnnlib.read_cifar10(root=tmp_path / "nowhere", download=False)


def test_missing_batch_file_is_named(fixture_root):
    (fixture_root / cifar.FOLDER / "data_batch_3").unlink()
    with pytest.raises(datafiles.DatasetError, match=r"data_batch_3 is missing: a complete cifar-10-batches-py"):
        cnnlib.read_cifar10(root=fixture_root)


def test_truncated_batch_file_is_named(fixture_root):
    path = fixture_root / cifar.FOLDER / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(datafiles.DatasetError, match=r"test_batch is not a CIFAR-10 batch: unpickling failed"):
        cnnlib.read_cifar10(False, root=fixture_root)


class _Payload:
    """Unpickling this calls ``os.mkdir(target)``: what a malicious pickle would do, made visible."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (str(self.target),)


def test_pickle_with_code_is_refused_without_running_it(fixture_root, tmp_path):
    path = fixture_root / cifar.FOLDER / "test_batch"
    path.write_bytes(pickle.dumps({"data": _Payload(tmp_path / "pwned"), "labels": []}, protocol=2))
    with pytest.raises(datafiles.DatasetError, match=r"refers to posix\.mkdir, which a CIFAR-10 batch never does"):
        cnnlib.read_cifar10(False, root=fixture_root)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], "holds a list, a dict was expected"),
    ({"labels": [0]}, r"'data' must be a uint8 array of shape \(N, 3072\).*found NoneType"),
    ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "found float32 array of shape"),
    ({"data": np.zeros((2, 1024), np.uint8), "labels": [0, 1]}, r"found uint8 array of shape \(2, 1024\)"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, "'labels' must be a list of 2 ints from 0 to 9"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "'labels' must be a list of 2 ints"),
])
def test_unexpected_batch_content_is_explained(fixture_root, content, message):
    (fixture_root / cifar.FOLDER / "test_batch").write_bytes(python2_pickle(content))
    with pytest.raises(datafiles.DatasetError, match=message):
        cnnlib.read_cifar10(False, root=fixture_root)


def test_label_names():
    assert cnnlib.get_cifar10_labels(torch.tensor([0, 9])) == ["airplane", "truck"]
    with pytest.raises(ValueError, match="0 to 9"):
        cnnlib.get_cifar10_labels([10])


def test_processes_that_find_cifar10_missing_at_once_download_and_unpack_it_once(tmp_path):
    """What torchrun does: every process loads at the same moment into the same folder, from the network (one
    downloads, the others wait), then from an archive put there by hand (one unpacks, the others wait)."""
    www, by_hand = tmp_path / "www", tmp_path / "by-hand"
    www.mkdir()
    by_hand.mkdir()
    raw = write_archive(www / cifar.ARCHIVE).read_bytes()
    (by_hand / cifar.ARCHIVE).write_bytes(raw)
    target = tmp_path / "data"
    with SlowServer(www, chunk=64 * 1024) as server:
        results = run_together(
            setup=f"""
                from cnnlib import cifar
                cifar.URL, cifar.ARCHIVE_MD5, cifar.ARCHIVE_BYTES = {server.url + cifar.ARCHIVE!r}, \\
                    {hashlib.md5(raw).hexdigest()!r}, {len(raw)}
                """,
            body=f"""
                images, labels = cifar.read_cifar10(True, root={str(target)!r})
                print(tuple(images.shape), cifar.cifar10_dir({str(by_hand)!r}).name)
                """,
            tmp_path=tmp_path)
    for result in results:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"({5 * TRAIN_PER_BATCH}, 3, 32, 32) {cifar.FOLDER}"
    assert leftovers(target) == [], "no temporary archive or half-unpacked folder may be left"
    assert leftovers(by_hand) == [cifar.ARCHIVE]
    assert dict(server.requests) == {cifar.ARCHIVE: 1}, "one process downloads, the others wait"


def test_editing_what_a_loader_returned_does_not_change_the_next_load(fixture_root):
    images, labels = cnnlib.read_cifar10(True, root=fixture_root)
    expected = images.clone(), labels.clone()
    images.zero_()
    labels.fill_(3)
    train_iter, _ = cnnlib.load_cifar10(10, root=fixture_root, device="cpu")
    train_iter.images.fill_(7)
    again = cnnlib.read_cifar10(True, root=fixture_root)
    assert torch.equal(again[0], expected[0]) and torch.equal(again[1], expected[1])
