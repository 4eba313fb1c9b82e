"""Networks pretrained on ImageNet, adapted to the book's data.

torchvision's ResNet-18 weights (``ResNet18_Weights.IMAGENET1K_V1``) expect three-channel images normalized with
ImageNet's channel statistics and predict 1,000 classes. :func:`load_pretrained_resnet18` turns them into a
network for ``in_channels`` channels (Fashion-MNIST: 1) and ``num_classes`` classes; :func:`adapt_first_conv`
does the channel part. torchvision is imported only when the weights are loaded: the rest of cnnlib runs
without it.
"""
import os
import pickle

import torch
from torch import nn

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"  # ResNet18_Weights.IMAGENET1K_V1.url
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# For gray images fed to the adapted first convolution: the averages of ImageNet's three channels.
GRAY_MEAN = (sum(IMAGENET_MEAN) / 3,)
GRAY_STD = (sum(IMAGENET_STD) / 3,)


class PretrainedWeightsError(RuntimeError):
    """The pretrained weights could not be downloaded, found or read."""


def adapt_first_conv(conv, in_channels):
    """A new ``nn.Conv2d`` like ``conv`` that takes ``in_channels`` input channels.

    Weight (out, c, kh, kw) -> (out, in_channels, kh, kw): every new input channel gets the sum of ``conv``'s
    channel weights divided by ``in_channels``. An input whose ``in_channels`` channels are all the same image
    (a gray image) therefore gives exactly what ``conv`` gives for that image repeated on its ``c`` channels.
    Stride, padding, dilation and bias are kept; the new layer is on ``conv``'s device, in its dtype.
    """
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
        raise ValueError("adapt_first_conv needs an nn.Conv2d with groups=1 (a network's first convolution)")
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode,
                    device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        summed = conv.weight.sum(dim=1, keepdim=True)
        new.weight.copy_(summed.expand_as(new.weight) / in_channels)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _torchvision():
    try:
        import torchvision
    except ImportError as err:
        raise ImportError("load_pretrained_resnet18 needs torchvision: pip install torchvision (Colab has it)") from err
    return torchvision


def _imagenet_state_dict(progress):
    """ResNet-18's ImageNet weights from torch.hub's cache, downloaded there (whole, hash-checked) when missing."""
    weights = _torchvision().models.ResNet18_Weights.IMAGENET1K_V1
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    was_cached = os.path.exists(cached)
    try:
        return weights.get_state_dict(progress=progress, check_hash=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        if was_cached:
            raise PretrainedWeightsError(
                f"{cached} is not a readable weights file ({type(err).__name__}: {err}); delete it and run again "
                f"to download it from {weights.url}") from err
        raise PretrainedWeightsError(
            f"could not download ResNet-18's ImageNet weights from {weights.url} ({type(err).__name__}: {err}). "
            f"Without network, download that file on another machine and put it at {cached} (torch.hub's cache), "
            f"or pass its path as weights_path=...") from err


def _file_state_dict(weights_path):
    if not os.path.isfile(weights_path):
        raise PretrainedWeightsError(f"weights_path {weights_path} does not exist: it should be ResNet-18's ImageNet "
                                     f"weights file, downloaded from {RESNET18_URL}")
    try:
        return torch.load(weights_path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise PretrainedWeightsError(f"{weights_path} is not a readable weights file ({type(err).__name__}: {err}); "
                                     f"download it again from {RESNET18_URL}") from err


def load_pretrained_resnet18(num_classes, in_channels=1, weights_path=None, progress=True):
    """torchvision's ResNet-18 with its ImageNet weights, for ``in_channels`` channels and ``num_classes`` classes.

    Input (B, in_channels, H, W), normalized like ImageNet's images (``IMAGENET_MEAN``/``IMAGENET_STD`` for three
    channels, ``GRAY_MEAN``/``GRAY_STD`` for one); the network downsamples by 32, so H and W of at least 64 keep
    some spatial detail in the last stage (ImageNet's are 224). Output (B, num_classes) logits.
    The first convolution is adapted with :func:`adapt_first_conv` when ``in_channels`` is not 3; the head ``fc``
    is a new ``nn.Linear(512, num_classes)``, initialized from torch's random generator.
    The weights come from ``weights_path`` (a state_dict saved with ``torch.save``), else from torch.hub's cache
    (``<torch.hub.get_dir()>/checkpoints/resnet18-f37072fd.pth``), downloaded there first when missing. Anything
    that fails (no network, a missing or unreadable file, weights of another network) raises one
    :class:`PretrainedWeightsError` that says what to do.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
    state_dict = _file_state_dict(weights_path) if weights_path is not None else _imagenet_state_dict(progress)
    net = _torchvision().models.resnet18()
    try:
        net.load_state_dict(state_dict)
    except (RuntimeError, TypeError, AttributeError) as err:
        source = weights_path or "the downloaded file"
        raise PretrainedWeightsError(f"{source} does not hold torchvision's ResNet-18 weights "
                                     f"({str(err).strip().splitlines()[0]})") from err
    if in_channels != 3:
        net.conv1 = adapt_first_conv(net.conv1, in_channels)
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net
