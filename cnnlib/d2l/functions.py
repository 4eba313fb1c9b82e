"""d2l-zh's function style: ``accuracy``, ``evaluate_accuracy_gpu`` and ``train_ch6`` as d2l's chapters call them.

``train_ch6`` trains with :func:`cnnlib.train` (data on the device, mixed precision on GPUs, CUDA graphs, one
sync per epoch) but behaves as d2l's does: it prints "training on <device>" and d2l's two closing lines, returns
None, keeps the random state as it is and initialises like d2l (Xavier for ``nn.Linear`` and ``nn.Conv2d``
weights; every other layer keeps the values it has).
"""
import torch

import cnnlib

from .modules import init_cnn

def accuracy(y_hat, y):
    """The number of correct predictions, as a float: y_hat (B, num_classes) scores or (B,) labels, y (B,)."""
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    return float((y_hat.type(y.dtype) == y).sum())


def evaluate_accuracy_gpu(net, data_iter, device=None):
    """The fraction of examples of ``data_iter`` that ``net`` classifies correctly, on ``device`` (default: where
    ``net``'s parameters are); counts are summed on the device and read back once."""
    return cnnlib.evaluate_accuracy(net, data_iter, device)


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None):
    """Train ``net`` for ``num_epochs`` epochs with minibatch SGD at learning rate ``lr`` on ``device`` (default
    :func:`cnnlib.try_gpu`), plotting loss and accuracies; returns None, like d2l's.

    Batches: X (B, C, H, W), y (B,) class indices; ``net`` maps X to logits (B, num_classes).
    """
    device = torch.device(device) if device is not None else cnnlib.try_gpu()
    print("training on", device)
    net.apply(init_cnn)
    history = cnnlib.train(net, train_iter, test_iter, num_epochs, lr, device, seed=None, init=None, summary=False)
    if history.epochs:
        print(f"loss {history.train_loss[-1]:.3f}, train acc {history.train_acc[-1]:.3f}, "
              f"test acc {history.test_acc[-1]:.3f}")
        print(f"{history.examples_per_sec:.1f} examples/sec on {device}")
