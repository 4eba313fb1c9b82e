"""Data-parallel training with ``torch.distributed``: the process group, ranks and the few collectives cnnlib uses.

Under ``torchrun`` every process (a *rank*) finds ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in its environment.
:func:`setup` starts the process group from them: ``nccl`` with one GPU per local rank on CUDA, ``gloo`` on the
CPU. Without those variables the world has one rank and every function here does nothing, so the same
``cnnlib.train`` call runs unchanged in a notebook and under ``torchrun``.

Each rank trains on its slice of every *global* batch (:func:`shard`); DDP averages the gradients over ranks
during the backward pass; the metric sums are all-reduced once per epoch; only rank 0 prints, plots and saves.
"""
import datetime
import os

import torch
import torch.distributed as dist
from torch import nn

from .utils import set_seed

# A rank that dies leaves the others waiting in a collective: give up after this long rather than never.
DEFAULT_TIMEOUT = datetime.timedelta(minutes=5)


def _env_int(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name}={value!r} must be an integer (torchrun sets it)") from None


def world_size():
    """Number of processes: the process group's size, else ``$WORLD_SIZE``, else 1."""
    return dist.get_world_size() if dist.is_initialized() else _env_int("WORLD_SIZE", 1)


def rank():
    """This process's index in 0 .. world_size() - 1 (0 without torchrun)."""
    return dist.get_rank() if dist.is_initialized() else _env_int("RANK", 0)


def local_rank():
    """This process's index on its machine (``$LOCAL_RANK``; 0 without torchrun): the GPU it uses."""
    return _env_int("LOCAL_RANK", 0)


def is_main():
    """True on rank 0, the process that prints, plots and saves."""
    return rank() == 0


def is_distributed():
    """True when more than one process trains together."""
    return world_size() > 1


class TooFewGPUs(RuntimeError):
    """torchrun started more processes on this machine than it has GPUs."""


def setup(device=None, timeout=DEFAULT_TIMEOUT):
    """Start the process group if torchrun launched several processes; return the device this rank uses.

    ``device``: ``"cpu"``, ``"cuda"`` or None (CUDA if available). On CUDA each rank takes ``cuda:LOCAL_RANK``
    and the backend is ``nccl``; on the CPU it is ``gloo``. With one process nothing is started and the device
    is returned as given (``cuda`` becomes ``cuda:0``).
    """
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        index = local_rank() if is_distributed() else (device.index or 0)
        if index >= torch.cuda.device_count():
            raise TooFewGPUs(f"rank {rank()} wants cuda:{index} but this machine has "
                               f"{torch.cuda.device_count()} GPUs: start at most that many processes per node")
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    if is_distributed() and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timeout, device_id=device if device.type == "cuda" else None)
    return device


def seed_own_draws(seed):
    """After every rank was seeded with ``seed``: give each rank other than 0 a stream of its own.

    What the ranks must share, the order of the examples and the augmentation seeds, is drawn on rank 0 and
    broadcast (see ``DeviceLoader``); what each rank draws for itself, dropout masks above all, must differ, or
    every slice of a batch would get the same masks. Rank 0 keeps ``seed``, so it draws exactly what one process
    seeded with ``seed`` would.
    """
    if rank() > 0:
        set_seed(seed + rank() * 2 ** 32)  # 2 ** 32 apart: no collision with another run's seed on rank 0


def teardown():
    """End the process group started by :func:`setup` (nothing to do with one process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(start, stop, rank, world_size):
    """Rank ``rank``'s contiguous part ``(start_r, stop_r)`` of the global batch ``[start, stop)``.

    The parts of all ranks cover the batch exactly once, in order; their sizes differ by at most one.
    """
    n = stop - start
    return start + rank * n // world_size, start + (rank + 1) * n // world_size


def broadcast_(tensor):
    """Overwrite ``tensor`` on every rank with rank 0's values (in place; nothing happens with one process)."""
    if dist.is_initialized():
        dist.broadcast(tensor, src=0)
    return tensor


def all_reduce_sum_(tensor):
    """Sum ``tensor`` over all ranks, in place, so every rank holds the total."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def wrap(net, device, sync_batchnorm=False):
    """Wrap ``net`` (already on ``device``) in ``DistributedDataParallel`` when several processes train.

    DDP starts every rank from rank 0's weights and, during ``backward``, averages the gradients over ranks in
    buckets, overlapping the communication with the rest of the backward pass. BatchNorm layers keep their
    batch statistics per process: each normalises with its own slice. ``sync_batchnorm=True`` converts them to
    ``nn.SyncBatchNorm`` (statistics over the global batch), which needs CUDA. With one process ``net`` is
    returned as it is.
    """
    if not is_distributed():
        return net
    if sync_batchnorm:
        if torch.device(device).type != "cuda":
            raise ValueError("sync_batchnorm=True needs CUDA (nccl); on the CPU BatchNorm statistics stay per process")
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    device_ids = [torch.device(device).index] if torch.device(device).type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=device_ids)


def print_main(*args, **kwargs):
    """``print`` on rank 0 only."""
    if is_main():
        print(*args, **kwargs)


def loss_weight(local_size, global_size, world_size):
    """Factor for a rank's mean loss so that DDP's average over ranks is the mean over the global batch.

    DDP averages the ranks' gradients with equal weights; a rank holding ``local_size`` of the ``global_size``
    examples must count ``local_size * world_size / global_size`` times (exactly 1.0 when all slices are equal).
    """
    return local_size * world_size / global_size
