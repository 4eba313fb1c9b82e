"""cnnlib: data, training and plotting helpers for the CNN course book.

Each module holds one idea: ``data`` (Fashion-MNIST on the device), ``cifar`` (CIFAR-10 on the device),
``train`` (the training loop), ``plot`` (live training plot, image grids), ``ops`` (from-scratch operations
the chapters teach), ``summary`` (layer table), ``augment`` (augmentation on the device), ``models`` (the
book's networks), ``utils`` (devices, timers, seeds, smoke runs).
"""
from . import augment, distributed, models
from .cifar import get_cifar10_labels, load_cifar10, read_cifar10
from .data import (DatasetError, DeviceLoader, get_fashion_mnist_labels, load_data_fashion_mnist,
                   load_fashion_mnist, read_fashion_mnist, torchvision_root)
from .ops import (batch_norm, comp_conv2d, corr2d, corr2d_multi_in, corr2d_multi_in_out,
                  corr2d_multi_in_out_1x1, pool2d)
from .plot import Animator, show_feature_maps, show_images
from .summary import summary
from .train import (History, TrainingDiverged, evaluate_accuracy, evaluate_accuracy_gpu, init_xavier, train,
                    train_ch6)
from .utils import Accumulator, Timer, set_seed, smoke_mode, try_all_gpus, try_gpu

__version__ = "0.1.0"
