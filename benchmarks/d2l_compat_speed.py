"""Claim: d2l's own LeNet code trains faster when its import line reads ``from cnnlib import d2l``.

Runs one of d2l's two LeNet flows, written as its chapter writes it, with either d2l itself or cnnlib.d2l, and
prints one JSON line: wall-clock seconds of loading the data and of the training call (train and test passes,
data loading included), seconds per epoch, and the final test accuracy.

- ``--flow zh``: d2l-zh 2.0, chapter 6.6: ``d2l.load_data_fashion_mnist(256)``, then
  ``d2l.train_ch6(net, train_iter, test_iter, epochs, 0.9, d2l.try_gpu())`` on the ``nn.Sequential`` LeNet.
- ``--flow en``: d2l-en 1.0.3, chapter 7.6: ``d2l.FashionMNIST(batch_size=128)``, ``LeNet(lr=0.1)`` (a
  ``d2l.Classifier``), ``model.apply_init(...)``, ``d2l.Trainer(max_epochs=epochs, num_gpus=1).fit(model, data)``.

d2l itself pins old numpy, pandas and matplotlib, so it runs in its own environment; this script imports cnnlib
there only to find Fashion-MNIST's files in torchvision's layout (``cnnlib.torchvision_root()``):

    python benchmarks/d2l_compat_speed.py --with cnnlib --flow zh --epochs 3
    python -m venv /tmp/d2lenv && /tmp/d2lenv/bin/pip install d2l==1.0.3   # plus torch and torchvision
    PYTHONPATH=. /tmp/d2lenv/bin/python benchmarks/d2l_compat_speed.py --with d2l --flow zh --epochs 3

In a terminal d2l's plots are not drawn (IPython prints a figure's repr instead), so d2l's times here are lower
bounds of its times in a notebook, where every plot update renders an SVG.
"""
import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import cnnlib


def import_d2l(which):
    """d2l's module as the chapters name it: d2l itself, run from a folder whose ``../data`` holds Fashion-MNIST
    in torchvision's layout (d2l's loaders read ``../data``), or cnnlib.d2l."""
    if which == "cnnlib":
        from cnnlib import d2l
        return d2l
    base = Path(tempfile.mkdtemp(prefix="d2l-speed-"))
    (base / "data").symlink_to(cnnlib.torchvision_root(), target_is_directory=True)
    (base / "work").mkdir()
    os.chdir(base / "work")
    from d2l import torch as d2l
    return d2l


def zh_flow(d2l, epochs):
    """d2l-zh 2.0, chapter 6.6, as written there; returns (load seconds, train seconds, test accuracy)."""
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))
    start = time.perf_counter()
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=256)
    loaded = time.perf_counter()
    d2l.train_ch6(net, train_iter, test_iter, epochs, 0.9, d2l.try_gpu())
    trained = time.perf_counter()
    return loaded - start, trained - loaded, d2l.evaluate_accuracy_gpu(net, test_iter)


def en_flow(d2l, epochs):
    """d2l-en 1.0.3, chapter 7.6, as written there; returns (load seconds, train seconds, test accuracy)."""

    class LeNet(d2l.Classifier):
        def __init__(self, lr=0.1, num_classes=10):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))

    start = time.perf_counter()
    trainer = d2l.Trainer(max_epochs=epochs, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=128)
    model = LeNet(lr=0.1)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    loaded = time.perf_counter()
    trainer.fit(model, data)
    trained = time.perf_counter()
    return loaded - start, trained - loaded, model.board.data["val_acc"][-1][1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--with", dest="which", choices=["d2l", "cnnlib"], required=True)
    parser.add_argument("--flow", choices=["zh", "en"], required=True)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    d2l = import_d2l(args.which)
    torch.manual_seed(0)
    load_s, train_s, test_acc = (zh_flow if args.flow == "zh" else en_flow)(d2l, args.epochs)
    print()  # d2l's plots leave terminal control codes on the last line: start a fresh one
    print(json.dumps(dict(flow=args.flow, d2l=args.which, epochs=args.epochs, load_s=round(load_s, 2),
                          train_s=round(train_s, 2), epoch_s=round(train_s / args.epochs, 2),
                          test_acc=round(float(test_acc), 3), torch=torch.__version__,
                          threads=torch.get_num_threads(), machine=platform.machine())))


if __name__ == "__main__":
    main()
