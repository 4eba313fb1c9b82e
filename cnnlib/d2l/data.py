"""Fashion-MNIST for d2l code: ``load_data_fashion_mnist`` (function style) and ``FashionMNIST`` (class style).

Both hand out :class:`cnnlib.DeviceLoader`: the data set sits on the GPU (if there is one) as uint8, and each
batch is converted, and resized if asked, on the device, where d2l's DataLoader decodes and resizes every image
with PIL in worker processes. Under ``CNNLIB_SMOKE=1`` at least five training batches of the requested size are
kept (d2l's loops report every fifth of an epoch), so these loaders keep more examples than cnnlib's own.
"""
import cnnlib
from cnnlib.utils import SMOKE_TEST_EXAMPLES, SMOKE_TRAIN_EXAMPLES

from .hyperparameters import HyperParameters

SMOKE_TRAIN_BATCHES = 5


def load_data_fashion_mnist(batch_size, resize=None):
    """d2l's loader: ``(train_iter, test_iter)``, batches X: float32 (B, 1, H, W) in [0, 1] with H = W = 28 or
    ``resize`` (an int or a pair), and y: int64 (B,); the training iterator reshuffles every epoch."""
    if not cnnlib.smoke_mode():
        return cnnlib.load_fashion_mnist(batch_size, resize)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    sizes = {True: max(SMOKE_TRAIN_EXAMPLES, SMOKE_TRAIN_BATCHES * batch_size),
             False: max(SMOKE_TEST_EXAMPLES, batch_size)}
    print(f"[cnnlib] smoke run (CNNLIB_SMOKE=1): {sizes[True]} training and {sizes[False]} test examples")
    device = cnnlib.try_gpu()
    loaders = []
    for train, n in sizes.items():
        images, labels = cnnlib.read_fashion_mnist(train)
        loaders.append(cnnlib.DeviceLoader(images[:n].to(device), labels[:n].to(device), batch_size,
                                           shuffle=train, resize=resize))
    return tuple(loaders)


class DataModule(HyperParameters):
    """The base class of d2l-en's data: ``get_dataloader(train)`` gives the training or the validation batches."""

    def __init__(self, root=None, num_workers=4):
        self.save_hyperparameters()

    def get_dataloader(self, train):
        raise NotImplementedError(f"{type(self).__name__} needs a get_dataloader(train) method")

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)


class FashionMNIST(DataModule):
    """d2l-en's Fashion-MNIST: ``resize`` an int or (height, width); the test split serves as validation data.

    The files are found as cnnlib finds them (``CNNLIB_DATA``, else the per-user cache, downloaded on first use);
    d2l's ``root`` and ``num_workers`` are not needed.
    """

    def __init__(self, batch_size=64, resize=(28, 28)):
        super().__init__()
        self.save_hyperparameters()
        self._loaders = dict(zip((True, False), load_data_fashion_mnist(batch_size, resize)))

    def get_dataloader(self, train):
        return self._loaders[bool(train)]

    def text_labels(self, indices):
        """Class names of numeric labels (ints or a tensor of them, 0-9)."""
        return cnnlib.get_fashion_mnist_labels(indices)

    def visualize(self, batch, nrows=1, ncols=8, labels=()):
        """Show the first ``nrows * ncols`` images of ``batch = (X, y)`` titled with their class names (or
        ``labels``)."""
        X, y = batch
        n = nrows * ncols
        titles = list(labels) or self.text_labels(y[:n])
        cnnlib.show_images(X[:n].squeeze(1), nrows, ncols, titles=titles[:n])
