"""d2l's names for the CNN chapters of *Dive into Deep Learning*, with cnnlib's speed.

Change one line of d2l's code, ``from d2l import torch as d2l``, to ``from cnnlib import d2l``; the rest of the
PyTorch code of d2l-zh 2.0's chapters 6-7 and d2l-en 1.0.3's chapters 7-8 runs as it is.

- d2l-zh's function style: ``load_data_fashion_mnist``, ``train_ch6``, ``evaluate_accuracy_gpu``, ``accuracy``,
  ``Accumulator``, ``Animator``, ``Timer``, ``corr2d``, ``try_gpu``, and d2l's tensor names (``tensor``,
  ``reshape``, ``reduce_sum``, ``zeros``, ``concat``, ``size``... in :mod:`cnnlib.d2l.tensors`).
- d2l-en's class style: ``HyperParameters``, ``Module``, ``Classifier``, ``DataModule``, ``FashionMNIST``,
  ``ProgressBoard``, ``Trainer``, ``init_cnn``, ``add_to_class``, ``ResNeXtBlock``.

What is faster than d2l, and what differs from it, is listed in the book's appendix "Coming from d2l".
"""
from matplotlib import pyplot as plt

from cnnlib import (Accumulator, Animator, Timer, corr2d, get_fashion_mnist_labels, show_images, try_all_gpus,
                    try_gpu)

from .board import ProgressBoard
from .data import DataModule, FashionMNIST, load_data_fashion_mnist
from .functions import accuracy, evaluate_accuracy_gpu, train_ch6
from .hyperparameters import HyperParameters, add_to_class
from .modules import Classifier, Module, ResNeXtBlock, init_cnn
from .tensors import (abs, arange, argmax, astype, batch_matmul, concat, cos, cosh, cpu, eye, exp, expand_dims,
                      float32, gpu, int32, int64, linspace, log, matmul, meshgrid, normal, num_gpus, numpy, ones,
                      ones_like, rand, randn, reduce_mean, reduce_sum, repeat, reshape, sigmoid, sin, sinh, size,
                      stack, swapaxes, tanh, tensor, to, transpose, zeros, zeros_like)
from .trainer import Trainer

__all__ = [
    "plt", "Accumulator", "Animator", "Timer", "corr2d", "get_fashion_mnist_labels", "show_images", "try_all_gpus",
    "try_gpu", "ProgressBoard", "DataModule", "FashionMNIST", "load_data_fashion_mnist", "accuracy",
    "evaluate_accuracy_gpu", "train_ch6", "HyperParameters", "add_to_class", "Classifier", "Module",
    "ResNeXtBlock", "init_cnn", "Trainer",
    "abs", "arange", "argmax", "astype", "batch_matmul", "concat", "cos", "cosh", "cpu", "eye", "exp",
    "expand_dims", "float32", "gpu", "int32", "int64", "linspace", "log", "matmul", "meshgrid", "normal",
    "num_gpus", "numpy", "ones", "ones_like", "rand", "randn", "reduce_mean", "reduce_sum", "repeat", "reshape",
    "sigmoid", "sin", "sinh", "size", "stack", "swapaxes", "tanh", "tensor", "to", "transpose", "zeros",
    "zeros_like",
]
