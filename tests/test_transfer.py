"""cnnlib.transfer: ImageNet's ResNet-18 adapted to one channel and a new head, from a weights file made here.

No test touches the network: the weights file is a torchvision ResNet-18 state_dict with random weights saved
with torch.save (the format of the real file), put where torch.hub caches it or passed by path, and the download
is replaced by one that fails as it does offline.
"""
import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from cnnlib import transfer

FILE_NAME = "resnet18-f37072fd.pth"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A ResNet-18 with random weights and the file its state_dict was saved to."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18().eval()
    path = tmp_path_factory.mktemp("weights") / FILE_NAME
    torch.save(net.state_dict(), path)
    return net, path


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch.hub folder, and a download that fails as it does without network (and must not be needed
    when the file is cached)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    calls = []

    def offline(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "hub" / "checkpoints", calls


def features(net, X):
    """The network's 512 pooled features (everything but the head)."""
    head, net.fc = net.fc, nn.Identity()
    try:
        with torch.no_grad():
            return net(X)
    finally:
        net.fc = head


@pytest.mark.parametrize("c_in, c_new", [(3, 1), (1, 3), (3, 2)])
def test_adapted_conv_gives_the_same_output_on_a_gray_image(c_in, c_new):
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, 8, kernel_size=7, stride=2, padding=3)
    gray = torch.rand(2, 1, 20, 20)
    new = transfer.adapt_first_conv(conv, c_new)
    assert new.weight.shape == (8, c_new, 7, 7)
    assert (new.stride, new.padding, new.kernel_size) == (conv.stride, conv.padding, conv.kernel_size)
    with torch.no_grad():
        torch.testing.assert_close(new(gray.expand(-1, c_new, -1, -1)), conv(gray.expand(-1, c_in, -1, -1)))


def test_adapt_first_conv_keeps_no_bias_and_rejects_bad_input():
    conv = nn.Conv2d(3, 4, 3, bias=False)
    assert transfer.adapt_first_conv(conv, 1).bias is None
    for bad in (0, 1.0, True):
        with pytest.raises(ValueError, match="in_channels"):
            transfer.adapt_first_conv(conv, bad)
    with pytest.raises(ValueError, match="groups=1"):
        transfer.adapt_first_conv(nn.Conv2d(4, 4, 3, groups=2), 1)


def test_the_url_is_torchvisions():
    assert transfer.RESNET18_URL == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert transfer.RESNET18_URL.endswith(FILE_NAME)


def test_loaded_from_a_path_the_network_computes_what_the_imagenet_one_does_on_gray_images(saved):
    original, path = saved
    torch.manual_seed(1)
    net = transfer.load_pretrained_resnet18(num_classes=5, in_channels=1, weights_path=path).eval()
    assert net.conv1.weight.shape == (64, 1, 7, 7) and net.fc.out_features == 5
    torch.testing.assert_close(net.layer4[1].conv2.weight, original.layer4[1].conv2.weight)
    gray = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(features(net, gray), features(original, gray.expand(-1, 3, -1, -1)),
                               rtol=1e-4, atol=1e-5)
    assert net(gray).shape == (2, 5)


def test_three_channels_keep_the_first_conv(saved):
    original, path = saved
    net = transfer.load_pretrained_resnet18(num_classes=10, in_channels=3, weights_path=path)
    torch.testing.assert_close(net.conv1.weight, original.conv1.weight)
    assert net.fc.out_features == 10


def test_the_cached_file_is_used_without_a_download(saved, hub):
    original, path = saved
    folder, calls = hub
    folder.mkdir(parents=True)
    (folder / FILE_NAME).write_bytes(path.read_bytes())
    net = transfer.load_pretrained_resnet18(num_classes=5, progress=False)
    assert calls == []
    torch.testing.assert_close(net.conv1.weight, original.conv1.weight.sum(dim=1, keepdim=True))


def test_without_network_one_error_names_the_url_and_what_to_do(hub):
    folder, calls = hub
    with pytest.raises(transfer.PretrainedWeightsError) as err:
        transfer.load_pretrained_resnet18(num_classes=5, progress=False)
    message = str(err.value)
    assert calls == [transfer.RESNET18_URL]
    assert transfer.RESNET18_URL in message and str(folder / FILE_NAME) in message and "weights_path" in message
    assert not (folder / FILE_NAME).exists()


def test_an_unreadable_cached_file_is_named_with_the_remedy(hub):
    folder, calls = hub
    folder.mkdir(parents=True)
    (folder / FILE_NAME).write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(transfer.PretrainedWeightsError, match="delete it and run again"):
        transfer.load_pretrained_resnet18(num_classes=5, progress=False)
    assert calls == []


def test_a_missing_or_wrong_weights_path_is_reported(tmp_path):
    with pytest.raises(transfer.PretrainedWeightsError, match="does not exist.*resnet18-f37072fd"):
        transfer.load_pretrained_resnet18(num_classes=5, weights_path=tmp_path / "nothing.pth")
    other = tmp_path / "lenet.pth"
    torch.save(nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(transfer.PretrainedWeightsError, match="does not hold torchvision's ResNet-18 weights"):
        transfer.load_pretrained_resnet18(num_classes=5, weights_path=other)
    with pytest.raises(ValueError, match="num_classes"):
        transfer.load_pretrained_resnet18(num_classes=0, weights_path=other)
