"""A tiny separable problem for training tests: the class is which half of an 8x8 image is bright."""
import torch
from torch.utils.data import DataLoader, TensorDataset


def toy_loaders(n=256, batch=64, shuffle_train=False):
    """``(train_iter, test_iter)`` of plain DataLoaders over the same n examples: X (B, 1, 8, 8), y (B,) in {0, 1}."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    X = torch.rand(n, 1, 8, 8, generator=g) * 0.5
    X[y == 1, :, :4] += 0.5
    X[y == 0, :, 4:] += 0.5
    data = TensorDataset(X, y)
    return DataLoader(data, batch_size=batch, shuffle=shuffle_train), DataLoader(data, batch_size=batch)
