"""cnnlib.d2l: d2l's code with the one import line changed runs, and behaves as d2l's does.

The tests are written the way d2l's chapters use the names: d2l-zh 2.0's function style (chapters 6-7: tensor
names, load_data_fashion_mnist, the LeNet chapter's own training loop, train_ch6) and d2l-en 1.0.3's class style
(chapters 7-8: Classifier, Trainer, FashionMNIST, layer_summary, add_to_class). Smoke-size data throughout: 58 s
on two CPU cores busy with other work (load average 12), 13 s of it torch importing torch._dynamo once.
"""
import copy
import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

import cnnlib
from cnnlib import d2l
from tests.toy_data import toy_loaders

matplotlib.use("Agg")
D2L_CLOSING = re.compile(r"loss \d+\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}\n\d+\.\d examples/sec on \S+\n$")


@pytest.fixture(autouse=True)
def smoke(monkeypatch):
    monkeypatch.setenv("CNNLIB_SMOKE", "1")


def zh_lenet():
    """d2l-zh's LeNet (chapter 6.6), with fixed layer sizes."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


class LeNet(d2l.Classifier):
    """d2l-en's LeNet (chapter 7.6), with lazy layers."""

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(), nn.LazyLinear(num_classes))


# ---- function style (d2l-zh) ----

def test_tensor_names_are_pytorch_functions():
    for name in ["tensor", "zeros", "zeros_like", "ones", "ones_like", "arange", "linspace", "meshgrid", "normal",
                 "rand", "randn", "eye", "matmul", "stack", "abs", "exp", "log", "sin", "sinh", "cos", "cosh",
                 "tanh", "sigmoid", "int32", "int64", "float32"]:
        assert getattr(d2l, name) is getattr(torch, name), name
    assert d2l.concat is torch.cat and d2l.batch_matmul is torch.bmm


def test_tensor_method_names_as_chapter_6_4_uses_them():
    # d2l-zh 6.4: a 1x1 convolution as a matrix product equals the cross-correlation, in d2l's own names.
    X, K = d2l.normal(0, 1, (3, 3, 3)), d2l.normal(0, 1, (2, 3, 1, 1))
    Y1 = d2l.reshape(d2l.matmul(d2l.reshape(K, (2, 3)), d2l.reshape(X, (3, 9))), (2, 3, 3))
    Y2 = d2l.stack([sum(d2l.corr2d(x, k) for x, k in zip(X, K_o)) for K_o in K], 0)
    assert float(d2l.reduce_sum(d2l.abs(Y1 - Y2))) < 1e-5
    M = d2l.reshape(d2l.arange(6, dtype=d2l.float32), (2, 3))
    assert d2l.transpose(M).shape == (3, 2) and d2l.size(M) == 6 and isinstance(d2l.size(M), int)
    assert d2l.reduce_sum(M) == 15 and torch.equal(d2l.reduce_sum(M, 0), torch.tensor([3.0, 5.0, 7.0]))
    assert d2l.reduce_mean(M) == 2.5 and torch.equal(d2l.argmax(M, 1), torch.tensor([2, 2]))
    assert d2l.astype(M, d2l.int64).dtype == torch.int64 and d2l.to(M, d2l.cpu()).device.type == "cpu"
    assert d2l.expand_dims(M, 0).shape == (1, 2, 3) and d2l.swapaxes(M, 0, 1).shape == (3, 2)
    assert d2l.repeat(M, 2, 1).shape == (4, 3) and d2l.concat((M, M + 1), 1).shape == (2, 6)
    array = d2l.numpy(M.requires_grad_())
    assert isinstance(array, np.ndarray) and array.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_devices():
    assert d2l.cpu() == torch.device("cpu") and d2l.gpu(1) == torch.device("cuda:1")
    assert d2l.num_gpus() == torch.cuda.device_count()
    assert d2l.try_gpu() == cnnlib.try_gpu() and d2l.try_all_gpus() == cnnlib.try_all_gpus()
    assert d2l.plt is matplotlib.pyplot


def test_accuracy_is_the_count_of_correct_predictions():
    y_hat = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    y = torch.tensor([1, 1, 1])
    assert d2l.accuracy(y_hat, y) == 2.0 and isinstance(d2l.accuracy(y_hat, y), float)
    assert d2l.accuracy(torch.tensor([1, 0, 1]), y) == 2.0  # predicted labels work too


@pytest.mark.needs_data
def test_smoke_loaders_keep_five_batches_where_cnnlib_keeps_its_size(capsys):
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=128, resize=32)
    assert len(train_iter) == 5 and train_iter.num_examples == 640 and test_iter.num_examples == 128
    X, y = next(iter(train_iter))
    assert X.shape == (128, 1, 32, 32) and y.shape == (128,) and X.device == d2l.try_gpu()
    assert "640 training and 128 test examples" in capsys.readouterr().out
    assert cnnlib.load_fashion_mnist(128)[0].num_examples == 256  # cnnlib's own loaders stay as small as before
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        d2l.load_data_fashion_mnist(batch_size=12.5)


@pytest.mark.needs_data
def test_lenet_chapter_own_training_loop_runs(capsys):
    # d2l-zh 6.6 writes its own loop with d2l's Animator, Timer, Accumulator, accuracy and size, and reports
    # every fifth of an epoch: num_batches // 5 must not be 0.
    net, device = zh_lenet(), d2l.try_gpu()
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=64)
    net.to(device)
    optimizer, loss = torch.optim.SGD(net.parameters(), lr=0.9), nn.CrossEntropyLoss()
    animator = d2l.Animator(xlabel="epoch", xlim=[1, 1], legend=["train loss", "train acc", "test acc"])
    timer, num_batches = d2l.Timer(), len(train_iter)
    metric = d2l.Accumulator(3)
    net.train()
    for i, (X, y) in enumerate(train_iter):
        timer.start()
        optimizer.zero_grad()
        X, y = X.to(device), y.to(device)
        y_hat = net(X)
        l = loss(y_hat, y)
        l.backward()
        optimizer.step()
        with torch.no_grad():
            metric.add(l * X.shape[0], d2l.accuracy(y_hat, y), X.shape[0])
        timer.stop()
        if (i + 1) % (num_batches // 5) == 0 or i == num_batches - 1:
            animator.add((i + 1) / num_batches, (metric[0] / metric[2], metric[1] / metric[2], None))
    animator.add(1, (None, None, d2l.evaluate_accuracy_gpu(net, test_iter)))
    out = capsys.readouterr().out
    assert [float(x) for x in re.findall(r"^epoch ([\d.]+): train loss", out, re.M)] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert re.search(r"^epoch 1: test acc 0\.\d{3}$", out, re.M)
    assert metric[2] == 320 and len(timer.times) == 5 and timer.sum() > 0


def test_evaluate_accuracy_gpu_counts_like_the_chapter():
    net, (_, test_iter) = nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), toy_loaders(n=200, batch=64)
    correct = sum(d2l.accuracy(net(X), y) for X, y in test_iter)
    assert d2l.evaluate_accuracy_gpu(net, test_iter) == pytest.approx(correct / 200)


def test_train_ch6_prints_d2l_lines_and_returns_none(capsys):
    train_iter, test_iter = toy_loaders(shuffle_train=True)
    result = d2l.train_ch6(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), train_iter, test_iter, 3, 0.5,
                           d2l.try_gpu())
    out = capsys.readouterr().out
    assert result is None
    assert out.startswith(f"training on {d2l.try_gpu()}\n")
    assert D2L_CLOSING.search(out), out
    assert "History(" not in out and out.count("examples/sec") == 1  # cnnlib's one-line summary left out


def test_train_ch6_neither_reseeds_nor_resets_layers(capsys):
    # d2l draws Xavier weights from the current random state and leaves biases and other layers as they are;
    # cnnlib.train would reseed (seed=0) and reset every layer.
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    nn.init.constant_(net[1].bias, 5.0)
    nn.init.constant_(net[1].weight, 100.0)
    runs, draws_after = [], []
    for seed in (1, 2, 1):
        trained = copy.deepcopy(net)
        torch.manual_seed(seed)
        d2l.train_ch6(trained, *toy_loaders(shuffle_train=True), num_epochs=1, lr=1e-6, device="cpu")
        runs.append(trained[1].weight.detach().clone())
        draws_after.append(torch.rand(3))  # the random state train_ch6 leaves behind
        assert trained[1].bias.detach().sub(5.0).abs().max() < 1e-4  # kept, moved only by the tiny step
    assert runs[0].abs().max() <= math.sqrt(6 / (64 + 2))  # Xavier-uniform's bound
    assert not torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    assert not torch.equal(draws_after[0], draws_after[1]) and torch.equal(draws_after[0], draws_after[2])


# ---- class style (d2l-en) ----

def test_save_hyperparameters_and_add_to_class():
    class Model(d2l.HyperParameters):
        def __init__(self, a, b=2, _private=3, skipped=4):
            self.save_hyperparameters(ignore=["skipped"])

    model = Model(1)
    assert model.hparams == {"a": 1, "b": 2} and (model.a, model.b) == (1, 2)
    assert not hasattr(model, "skipped") and not hasattr(model, "_private")

    @d2l.add_to_class(Model)
    def total(self):
        return self.a + self.b

    assert model.total() == 3 and callable(total)  # added to instances made before too
    with pytest.raises(TypeError, match="needs a class"):
        d2l.add_to_class(model)


def test_layer_summary_prints_each_layer_and_sets_lazy_shapes(capsys):
    model = LeNet()
    model.layer_summary((1, 1, 28, 28))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12
    assert lines[0] == "Conv2d output shape:\t torch.Size([1, 6, 28, 28])"
    assert lines[6] == "Flatten output shape:\t torch.Size([1, 400])"
    assert lines[-1] == "Linear output shape:\t torch.Size([1, 10])"
    assert model.net[7].weight.shape == (120, 400)


def test_init_cnn_is_xavier_for_dense_and_conv_only():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(10, 10))
    for p in net.parameters():
        nn.init.constant_(p, 7.0)
    net.apply(d2l.init_cnn)
    assert net[0].weight.abs().max() < 1 and net[2].weight.abs().max() < 1
    assert (net[0].bias == 7).all() and (net[1].weight == 7).all() and (net[2].bias == 7).all()


@pytest.mark.needs_data
def test_lenet_classifier_fits_one_smoke_epoch_with_d2l_en_flow(capsys):
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=64)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    before = copy.deepcopy(model.state_dict())
    trainer.fit(model, data)
    out = capsys.readouterr().out
    assert "1 epoch instead of 10" in out and re.search(r"^epoch 1: train_loss [\d.]+, val_loss", out, re.M)
    # 5 training batches, two points per epoch (of 2 batches each); 2 validation batches, one point each
    assert [p[0] for p in model.board.data["train_loss"]] == pytest.approx([0.1, 0.5])
    assert list(model.board.data) == ["train_loss", "val_loss", "val_acc"]
    assert all(isinstance(p[1], float) for line in model.board.data.values() for p in line)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    with torch.no_grad():
        correct = sum(float((model(X).argmax(1) == y).sum()) for X, y in data.val_dataloader())
    assert model.board.data["val_acc"][0][1] == pytest.approx(correct / 128)  # both validation batches full


def test_progress_board_averages_every_n_and_defers_tensors(capsys):
    board = d2l.ProgressBoard("x")
    for x in np.arange(0, 1, 0.1):
        board.draw(x, np.sin(x), "sin", every_n=2)
    assert [round(p[0], 2) for p in board.data["sin"]] == [0.05, 0.25, 0.45, 0.65, 0.85]
    assert board.data["sin"][0][1] == pytest.approx((np.sin(0) + np.sin(0.1)) / 2)
    assert capsys.readouterr().out.count("\n") == 5  # in a terminal, one line per drawing
    with board.batched():
        for i in range(4):
            board.draw(i, torch.tensor(float(i)), "loss", every_n=2)
        assert all(isinstance(p[1], torch.Tensor) for p in board.data["loss"])  # no value read back yet
        assert capsys.readouterr().out == ""
    assert board.data["loss"] == [[0.5, 0.5], [2.5, 2.5]]
    assert capsys.readouterr().out == "x 2.5: loss 2.500\n"
    with pytest.raises(ValueError, match="every_n"):
        board.draw(0, 1.0, "loss", every_n=0)


@pytest.mark.needs_data
def test_fashion_mnist_data_module(capsys):
    data = d2l.FashionMNIST(batch_size=32, resize=(14, 14))
    assert data.train_dataloader() is data.get_dataloader(True) and data.val_dataloader() is data.get_dataloader(0)
    X, y = next(iter(data.val_dataloader()))
    assert X.shape == (32, 1, 14, 14) and (data.batch_size, data.resize) == (32, (14, 14))
    assert data.text_labels(torch.tensor([0, 9])) == ["t-shirt", "ankle boot"]
    data.visualize((X, y), nrows=1, ncols=4)
    titles = [ax.get_title() for ax in matplotlib.pyplot.gcf().axes]
    assert titles == data.text_labels(y[:4])
    matplotlib.pyplot.close("all")


def test_module_errors_say_what_is_missing():
    with pytest.raises(NotImplementedError, match="no self.net"):
        d2l.Module()(torch.zeros(1))
    with pytest.raises(RuntimeError, match="Trainer.fit"):
        d2l.Module().plot("loss", 1.0, train=True)
    with pytest.raises(AttributeError, match="no learning rate"):
        d2l.Classifier().configure_optimizers()
    with pytest.raises(ValueError, match="max_epochs"):
        d2l.Trainer(max_epochs=0)


def test_trainer_clips_gradients_to_the_given_norm():
    model = nn.Linear(4, 4)
    model(torch.ones(2, 4)).pow(2).sum().mul(100).backward()
    d2l.Trainer(max_epochs=1, gradient_clip_val=0.5).clip_gradients(0.5, model)
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert norm == pytest.approx(0.5, rel=1e-4)


def test_resnext_block_shapes_and_groups():
    block = d2l.ResNeXtBlock(32, groups=16, bot_mul=1)
    assert block(torch.randn(2, 32, 8, 8)).shape == (2, 32, 8, 8) and block.conv2.groups == 2
    block = d2l.ResNeXtBlock(64, groups=16, bot_mul=0.5, use_1x1conv=True, strides=2)
    assert block(torch.randn(2, 32, 8, 8)).shape == (2, 64, 4, 4)


def test_pip_install_ships_cnnlib_d2l():
    # `pip install git+URL` (Colab) installs only the packages pyproject.toml lists; a subpackage left out
    # works in this editable checkout and is missing everywhere else.
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert "cnnlib.d2l" in config["tool"]["setuptools"]["packages"]
