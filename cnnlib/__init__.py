"""cnnlib: data, training and plotting helpers for the CNN course book.

Each module holds one idea:

- ``loader``: minibatches from data kept on the device (``DeviceLoader``)
- ``datafiles``: where data sets live on disk, downloads written safely beside other processes
- ``fashion_mnist``: Fashion-MNIST's files, found, downloaded, checked and loaded onto the device
- ``cifar``: CIFAR-10 in torchvision's layout, the same way
- ``augment``: augmentation of whole batches on the device
- ``training``: the training loop (``train``, d2l's ``train_ch6``), ``evaluate_accuracy``, the precision choice
- ``steps``: one training step and one evaluation pass, eager or replayed as a CUDA graph
- ``distributed``: data-parallel training under ``torchrun``
- ``run``: the command line ``python -m cnnlib.run MODEL``
- ``plot``: the progress bar, the live training plot, image grids and feature maps
- ``ops``: the from-scratch operations the chapters teach (``corr2d``, ``pool2d``, ``batch_norm``...)
- ``summary``: a layer table with output shapes, parameters and FLOPs
- ``models``: the book's networks and each chapter's training settings
- ``transfer``: ImageNet's pretrained ResNet-18 adapted to one channel and new classes (imports torchvision)
- ``utils``: devices, timers, seeds, smoke runs
"""
from . import augment, distributed, models
from .cifar import get_cifar10_labels, load_cifar10, read_cifar10
from .fashion_mnist import (get_fashion_mnist_labels, load_data_fashion_mnist, load_fashion_mnist,
                            read_fashion_mnist, torchvision_root)
from .datafiles import DatasetError
from .loader import DeviceLoader
from .ops import (batch_norm, comp_conv2d, corr2d, corr2d_multi_in, corr2d_multi_in_out,
                  corr2d_multi_in_out_1x1, pool2d)
from .plot import Animator, show_feature_maps, show_images
from .summary import summary
from .training import (History, TrainingDiverged, evaluate_accuracy, evaluate_accuracy_gpu, init_xavier, train,
                       train_ch6)
from .utils import Accumulator, Timer, set_seed, smoke_mode, try_all_gpus, try_gpu

__version__ = "0.1.0"
