"""cnnlib.training (the function cnnlib.train): learning, precision, seeding, and training gone wrong."""
import re

import pytest
import torch
from torch import nn

import cnnlib
from cnnlib import training
from tests.toy_data import toy_loaders
SUMMARY = re.compile(r"^loss \d+\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}, \d+\.\d examples/sec on cpu$", re.M)


@pytest.fixture(autouse=True)
def full_size(monkeypatch):
    monkeypatch.setenv("CNNLIB_SMOKE", "0")


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def toy_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))


@pytest.mark.needs_data
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


def test_precision_is_chosen_by_device_and_compute_capability(monkeypatch):
    """What torch reports is faked, not the choice: a T4 (7.5) says bf16 is supported (emulated), yet gets fp16."""
    assert training.choose_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert training.choose_precision("cuda:0") == "fp16"  # Colab's T4: no bf16 convolutions in cuDNN
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert training.choose_precision("cuda:0") == "bf16"  # A100 and later
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (6, 0))
    assert training.choose_precision("cuda:0") == "fp16"
    assert training.choose_precision("cuda:0", "fp32") == "fp32"
    with pytest.raises(ValueError, match="precision must be"):
        training.choose_precision("cpu", "fp8")


def test_capability_is_asked_of_the_device_passed_in(monkeypatch):
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or (7, 5))
    training.choose_precision("cuda:1")
    assert asked == [torch.device("cuda:1")]


def test_a_failing_capture_falls_back_to_eager_steps_with_one_line(monkeypatch, capsys):
    """What CUDA raises when forward() calls .item() during capture must not stop training."""
    def capture_fails(*args, **kwargs):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")
    monkeypatch.setattr(training, "GraphedTrainStep", capture_fails)
    net = toy_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    sums = torch.zeros(2)
    train_iter, _ = toy_loaders()
    X, y = next(iter(train_iter))
    step = training._train_step_fn(net, nn.CrossEntropyLoss(), optimizer, None, None, sums, train_iter, (X, y))
    before = net[1].weight.detach().clone()
    step(0, X, y)
    assert not torch.equal(before, net[1].weight) and sums[0] > 0  # the eager step trained
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "training without CUDA graphs: capturing failed (RuntimeError: CUDA error: operation not permitted" in out
    assert ".item()" in out and "graphs=False" in out


def test_graphs_off_says_why_once(capsys):
    train_iter, test_iter = toy_loaders()
    for _ in range(2):
        cnnlib.train(toy_net(), train_iter, test_iter, 1, 0.5, "cpu", graphs=True, plot=False)
    out = capsys.readouterr().out
    assert out.count("training without CUDA graphs: CUDA graphs need a GPU, and this run is on cpu") == 1
    cnnlib.train(toy_net(), train_iter, test_iter, 1, 0.5, "cpu", plot=False)  # the default on a CPU: silent
    assert "CUDA graphs" not in capsys.readouterr().out


def test_graphs_off_reasons():
    cuda, sgd = torch.device("cuda:0"), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    adam = torch.optim.Adam([nn.Parameter(torch.zeros(1))])
    reason = training._graphs_off_reason
    assert reason(None, cuda, None, False, sgd, None) is None
    assert reason(None, torch.device("cpu"), None, False, sgd, None) is None
    assert "GradScaler" in reason(None, cuda, object(), False, sgd, None)
    assert "Adam" in reason(None, cuda, None, False, adam, None)
    assert "compile" in reason(None, cuda, None, "reduce-overhead", sgd, None)
    assert "scheduler" in reason(None, cuda, None, False, sgd, object())


def test_optimizer_and_scheduler(capsys):
    train_iter, test_iter = toy_loaders()
    net = toy_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    history = cnnlib.train(net, train_iter, test_iter, 3, device="cpu", optimizer=optimizer, scheduler=scheduler,
                           plot=False)
    assert history.epochs == 3 and optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3)
    with pytest.raises(ValueError, match="lr=0.1 was given together with an optimizer whose learning rate is"):
        cnnlib.train(toy_net(), train_iter, test_iter, 1, 0.1, "cpu", optimizer=optimizer, plot=False)


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


@pytest.mark.needs_cuda
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


@pytest.mark.needs_cuda
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


@pytest.mark.needs_cuda
def test_models_that_replace_tensors_fall_back_to_eager(capsys):
    def net():
        return nn.Sequential(ReassigningNorm(), nn.Flatten(), nn.Linear(64, 2))
    train_iter, test_iter = toy_loaders(n=300, batch=64)
    runs = [cnnlib.train(net(), train_iter, test_iter, 2, 0.1, "cuda", graphs=g, plot=False) for g in (False, True)]
    assert "training without CUDA graphs: ReassigningNorm.moving_mean is replaced" in capsys.readouterr().out
    assert runs[0].train_loss == pytest.approx(runs[1].train_loss, rel=1e-4)


class ReadsBack(nn.Module):
    """A student's forward that reads a value back to Python: fine eagerly, impossible inside a CUDA graph."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 2)

    def forward(self, X):
        if X.abs().max().item() > 1e6:  # a data-dependent branch
            raise ValueError("input out of range")
        return self.lin(X.flatten(1))


@pytest.mark.needs_cuda
def test_a_forward_that_cannot_be_captured_trains_eagerly(capsys):
    train_iter, test_iter = toy_loaders(n=300, batch=64)
    runs = [cnnlib.train(ReadsBack(), train_iter, test_iter, 2, 0.1, "cuda", graphs=g, plot=False)
            for g in (False, True)]
    out = capsys.readouterr().out
    assert "training without CUDA graphs: capturing failed" in out and "graphs=False" in out
    assert runs[0].train_loss == pytest.approx(runs[1].train_loss, rel=1e-4)
