"""d2l-en's model classes: ``Module``, ``Classifier``, ``init_cnn`` and the ``ResNeXtBlock`` of its chapter 8."""
import torch
import torch.nn.functional as F
from torch import nn

from .board import ProgressBoard
from .hyperparameters import HyperParameters


def init_cnn(module):
    """d2l's initialisation for CNNs (use with ``net.apply``): Xavier-uniform weights for every ``nn.Linear`` and
    ``nn.Conv2d``. Like d2l it checks the exact type, so a lazy layer is left alone until its first forward pass
    has turned it into an ``nn.Linear``/``nn.Conv2d``, and other layers keep their initialisation."""
    if type(module) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight)


class Module(nn.Module, HyperParameters):
    """The base class of d2l-en's models: the network ``self.net``, its loss, its optimizer, and the points it plots
    on ``self.board`` while a :class:`Trainer` fits it (``plot_train_per_epoch`` training and
    ``plot_valid_per_epoch`` validation points per epoch)."""

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        self.save_hyperparameters()
        self.board = ProgressBoard()

    def loss(self, y_hat, y):
        raise NotImplementedError(f"{type(self).__name__} needs a loss(y_hat, y) method (d2l.Classifier has one)")

    def forward(self, X):
        if not hasattr(self, "net"):
            raise NotImplementedError(f"{type(self).__name__} has no self.net: set it in __init__ or define forward")
        return self.net(X)

    def plot(self, key, value, train):
        """Plot ``value`` (a number or a 0-d tensor) as the curve ``train_<key>`` or ``val_<key>``."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            raise RuntimeError("plot() draws progress while d2l.Trainer.fit(model, data) runs; call it from "
                               "training_step or validation_step")
        self.board.xlabel = "epoch"
        if train:
            x = trainer.train_batch_idx / trainer.num_train_batches
            every_n = trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = trainer.epoch + 1
            every_n = trainer.num_val_batches / self.plot_valid_per_epoch
        value = value.detach() if isinstance(value, torch.Tensor) else value
        self.board.draw(x, value, ("train_" if train else "val_") + key, every_n=max(int(every_n), 1))

    def training_step(self, batch):
        """The loss of one batch ``(X, ..., y)``, plotted as ``train_loss``."""
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", l, train=True)
        return l

    def validation_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", l, train=False)

    def configure_optimizers(self):
        """Minibatch SGD with the learning rate ``self.lr``."""
        if not hasattr(self, "lr"):
            raise AttributeError(f"{type(self).__name__} has no learning rate: give __init__ an lr argument and "
                                 f"call self.save_hyperparameters(), or override configure_optimizers")
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None):
        """Run one forward pass on ``inputs`` (a list of batches) so that lazy layers learn their shapes, then
        ``self.net.apply(init)``. The inputs are moved to the model's device first."""
        device = next(self.parameters(), torch.empty(0)).device
        self.forward(*[X.to(device) for X in inputs])
        if init is not None:
            self.net.apply(init)


class Classifier(Module):
    """The base class of d2l-en's classifiers: cross-entropy loss, accuracy, and a layer-by-layer summary."""

    def validation_step(self, batch):
        Y_hat = self(*batch[:-1])
        self.plot("loss", self.loss(Y_hat, batch[-1]), train=False)
        self.plot("acc", self.accuracy(Y_hat, batch[-1]), train=False)

    def accuracy(self, Y_hat, Y, averaged=True):
        """The fraction of correct predictions (a 0-d tensor), or with ``averaged=False`` a float 0/1 per example.
        Y_hat: (..., num_classes) logits, Y: (...) class indices."""
        predictions = Y_hat.reshape(-1, Y_hat.shape[-1]).argmax(dim=1).type(Y.dtype)
        correct = (predictions == Y.reshape(-1)).float()
        return correct.mean() if averaged else correct

    def loss(self, Y_hat, Y, averaged=True):
        """Cross-entropy of logits Y_hat: (..., num_classes) against class indices Y: (...); the mean, or with
        ``averaged=False`` one value per example."""
        return F.cross_entropy(Y_hat.reshape(-1, Y_hat.shape[-1]), Y.reshape(-1),
                               reduction="mean" if averaged else "none")

    def layer_summary(self, X_shape):
        """Pass random data of shape ``X_shape`` (e.g. (1, 1, 28, 28)) through ``self.net`` layer by layer and print
        each layer's output shape (this also sets the shapes of lazy layers)."""
        device = next(self.parameters(), torch.empty(0)).device
        X = torch.randn(*X_shape, device=device)
        for layer in self.net:
            X = layer(X)
            print(layer.__class__.__name__, "output shape:\t", X.shape)


class ResNeXtBlock(nn.Module):
    """d2l-en's ResNeXt block (chapter 8.6; chapter 8.8's AnyNet uses it as ``d2l.ResNeXtBlock``).

    A 1x1 convolution to ``round(num_channels * bot_mul)`` channels, a 3x3 grouped convolution with stride
    ``strides`` whose groups hold ``groups`` channels each (d2l's meaning of ``groups``), a 1x1 convolution to
    ``num_channels``, batch norm after each, added to the input (through a 1x1 convolution and batch norm when
    ``use_1x1conv``), then ReLU. X: (B, C, H, W) -> (B, num_channels, H / strides, W / strides).
    """

    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        bottleneck = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bottleneck, kernel_size=1)
        self.conv2 = nn.LazyConv2d(bottleneck, kernel_size=3, stride=strides, padding=1,
                                   groups=bottleneck // groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1)
        self.bn1, self.bn2, self.bn3 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()
        self.shortcut = (nn.Sequential(nn.LazyConv2d(num_channels, kernel_size=1, stride=strides),
                                       nn.LazyBatchNorm2d()) if use_1x1conv else nn.Identity())

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        return F.relu(Y + self.shortcut(X))
