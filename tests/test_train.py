"""cnnlib.train: learning, precision, seeding, and what happens when training goes wrong."""
import os
import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import cnnlib

SHARED = os.environ.get("CNNLIB_DATA")
needs_data = pytest.mark.skipif(not SHARED or not Path(SHARED).is_dir(),
                                reason="set CNNLIB_DATA to a folder with the four Fashion-MNIST .gz files")
train_module = sys.modules["cnnlib.train"]  # cnnlib.train is the function
SUMMARY = re.compile(r"^loss \d+\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}, \d+\.\d examples/sec on cpu$", re.M)


@pytest.fixture(autouse=True)
def full_size(monkeypatch):
    monkeypatch.setenv("CNNLIB_SMOKE", "0")


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def toy_loaders(n=256, batch=64):
    """A separable toy problem: class = which half of the image is bright."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    X = torch.rand(n, 1, 8, 8, generator=g) * 0.5
    X[y == 1, :, :4] += 0.5
    X[y == 0, :, 4:] += 0.5
    loader = DataLoader(TensorDataset(X, y), batch_size=batch)
    return loader, loader


def toy_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))


@needs_data
def test_one_epoch_on_full_fashion_mnist_learns(capsys):
    # Chance is 0.10 on ten balanced classes. One epoch of this small CNN reaches about 0.8, so 0.70 leaves
    # room for seed noise while failing on anything that does not learn (a broken loader, wrong labels,
    # a loop that never steps) -- those stay near 0.10.
    train_iter, test_iter = cnnlib.load_fashion_mnist(256, device="cpu")
    history = cnnlib.train(small_cnn(), train_iter, test_iter, num_epochs=1, lr=0.3, device="cpu", plot=False)
    assert history.epochs == 1 and history.train_examples == [60000]
    assert history.test_acc[-1] > 0.70, history
    assert history.train_loss[-1] < 1.5  # averaged over the epoch; guessing gives ln 10 = 2.30
    assert SUMMARY.search(capsys.readouterr().out)
    assert history.precision == "fp32" and history.device == "cpu"


def test_history_and_summary_line(capsys):
    train_iter, test_iter = toy_loaders()
    history = cnnlib.train(toy_net(), train_iter, test_iter, 3, 0.5, device="cpu")
    out = capsys.readouterr().out
    assert history.epochs == 3 and len(history.seconds) == len(history.test_acc) == 3
    assert history.test_acc[-1] > 0.9  # the toy problem is linearly separable
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.examples_per_sec > 0 and all(s > 0 for s in history.seconds)
    assert out.count("epoch ") == 3, "a terminal gets one text line per epoch from the Animator"
    assert SUMMARY.search(out) and history.summary() in out
    assert "3 epochs" in repr(history)


def test_seeded_runs_repeat_exactly():
    results = []
    for _ in range(2):
        train_iter, test_iter = toy_loaders()
        results.append(cnnlib.train(toy_net(), train_iter, test_iter, 2, 0.5, device="cpu", plot=False).train_loss)
    assert results[0] == results[1]


def test_d2l_alias_and_bf16_autocast_on_cpu():
    train_iter, test_iter = toy_loaders()
    history = cnnlib.train_ch6(toy_net(), train_iter, test_iter, 2, 0.5, device="cpu")
    assert history.precision == "fp32"
    history = cnnlib.train(toy_net(), train_iter, test_iter, 2, 0.5, device="cpu", precision="bf16", plot=False)
    assert history.precision == "bf16" and history.test_acc[-1] > 0.9


def test_precision_is_chosen_by_device(monkeypatch):
    assert train_module.choose_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert train_module.choose_precision("cuda:0") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert train_module.choose_precision("cuda:0") == "fp16"  # e.g. Colab's T4
    assert train_module.choose_precision("cuda:0", "fp32") == "fp32"
    with pytest.raises(ValueError, match="precision must be"):
        train_module.choose_precision("cpu", "fp8")


def test_smoke_mode_trains_one_epoch_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("CNNLIB_SMOKE", "1")
    train_iter, test_iter = toy_loaders()
    history = cnnlib.train(toy_net(), train_iter, test_iter, 10, 0.5, device="cpu", plot=False)
    assert history.epochs == 1
    assert "1 epoch instead of 10" in capsys.readouterr().out


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 2)

    def forward(self, X):
        return self.linear(X.flatten(1)) * float("nan")


def test_nan_loss_stops_with_a_clear_message():
    train_iter, test_iter = toy_loaders()
    with pytest.raises(cnnlib.TrainingDiverged, match="smaller learning rate") as err:
        cnnlib.train(NaNNet(), train_iter, test_iter, 3, 0.5, device="cpu", plot=False)
    assert err.value.history.epochs == 0


class InterruptAt:
    """Wrap a loader; raise KeyboardInterrupt (as Ctrl-C does) at batch ``batch`` of epoch ``epoch``."""

    def __init__(self, loader, epoch, batch):
        self.loader, self.epoch, self.batch, self.seen = loader, epoch, batch, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.seen += 1
        for i, item in enumerate(self.loader):
            if self.seen == self.epoch and i == self.batch:
                raise KeyboardInterrupt
            yield item


def test_ctrl_c_returns_the_finished_epochs(capsys):
    train_iter, test_iter = toy_loaders()
    history = cnnlib.train(toy_net(), InterruptAt(train_iter, 3, 2), test_iter, 5, 0.5, device="cpu", plot=False)
    assert history.interrupted and history.epochs == 2
    assert "Interrupted in epoch 3" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_epochs=0, lr=0.1), "num_epochs must be a positive int"),
    (dict(num_epochs=1.5, lr=0.1), "num_epochs must be a positive int"),
    (dict(num_epochs=1, lr=-0.1), "lr must be a positive number"),
    (dict(num_epochs=1, lr=float("nan")), "lr must be a positive number"),
])
def test_bad_arguments(kwargs, message):
    train_iter, test_iter = toy_loaders()
    with pytest.raises(ValueError, match=message):
        cnnlib.train(toy_net(), train_iter, test_iter, device="cpu", **kwargs)


def test_evaluate_accuracy_counts_correct_predictions():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def forward(self, X):
            return torch.tensor([[0.0, 1.0]]).expand(len(X), 2) + self.dummy

    loader, _ = toy_loaders()
    labels = torch.cat([y for _, y in loader])
    net = Constant()
    assert cnnlib.evaluate_accuracy(net, loader) == pytest.approx((labels == 1).float().mean().item())
    assert cnnlib.evaluate_accuracy_gpu is cnnlib.evaluate_accuracy
    assert net.training, "evaluation must restore training mode"
    with pytest.raises(ValueError, match="empty"):
        cnnlib.evaluate_accuracy(net, [])


def test_init_xavier_touches_only_conv_and_linear():
    bn = nn.BatchNorm2d(3)
    cnnlib.init_xavier(bn)
    assert torch.equal(bn.weight, torch.ones(3))
    lin = nn.Linear(100, 100)
    torch.manual_seed(0)
    cnnlib.init_xavier(lin)
    bound = (6 / 200) ** 0.5
    assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.9 * bound


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_cuda_graph_training_matches_eager(precision):
    """A replayed CUDA graph must train exactly like the eager loop (BN buffers, partial last batch)."""
    def net():
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 8 * 8, 2))
    train_iter, test_iter = toy_loaders(n=300, batch=64)  # 300 = 4 full batches + one of 44
    runs = [cnnlib.train(net(), train_iter, test_iter, 3, 0.1, "cuda", precision=precision, graphs=g, plot=False,
                         channels_last=False) for g in (False, True)]
    assert runs[0].train_loss == pytest.approx(runs[1].train_loss, rel=1e-4)
    assert runs[0].test_acc == runs[1].test_acc


@needs_cuda
def test_fp16_with_grad_scaler_on_cuda():
    train_iter, test_iter = toy_loaders()
    history = cnnlib.train(toy_net(), train_iter, test_iter, 2, 0.5, "cuda", precision="fp16", plot=False)
    assert history.precision == "fp16" and history.test_acc[-1] > 0.9


class ReassigningNorm(nn.Module):
    """d2l-style batch norm statistics: a plain attribute replaced by a new tensor on every forward."""

    def __init__(self):
        super().__init__()
        self.moving_mean = torch.zeros(1)

    def forward(self, X):
        if self.moving_mean.device != X.device:
            self.moving_mean = self.moving_mean.to(X.device)
        self.moving_mean = 0.9 * self.moving_mean + 0.1 * X.mean().detach()
        return X - self.moving_mean


@needs_cuda
def test_models_that_replace_tensors_fall_back_to_eager(capsys):
    def net():
        return nn.Sequential(ReassigningNorm(), nn.Flatten(), nn.Linear(64, 2))
    train_iter, test_iter = toy_loaders(n=300, batch=64)
    runs = [cnnlib.train(net(), train_iter, test_iter, 2, 0.1, "cuda", graphs=g, plot=False) for g in (False, True)]
    assert "training without CUDA graphs: ReassigningNorm.moving_mean is replaced" in capsys.readouterr().out
    assert runs[0].train_loss == pytest.approx(runs[1].train_loss, rel=1e-4)
