"""Train and evaluate a classifier, fast and honestly timed.

What makes it fast: data already on the device (see ``data.py``), mixed precision chosen by the device,
channels_last, CUDA graphs (steps.py), and metrics summed on the device and read back once per epoch instead of
every batch.
What makes it honest: examples/sec is training examples over wall-clock seconds, data loading included.
Under ``torchrun`` the same call trains data-parallel (``distributed.py``): DDP, metrics summed over ranks, output
from rank 0 only.
"""
import math
import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from . import distributed
from .plot import Animator, in_notebook
from .steps import GraphedEvaluation, GraphedTrainStep, GraphUnsafe, count_correct, train_step
from .utils import set_seed, smoke_mode, try_gpu

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite. ``history`` holds the epochs finished before that."""

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


@dataclass
class History:
    """Per-epoch results of :func:`train`; every list has one entry per finished epoch."""

    device: str
    precision: str
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)  # wall clock per epoch: training pass + test pass
    train_seconds: list = field(default_factory=list)  # wall clock of the training pass, data included
    train_examples: list = field(default_factory=list)
    interrupted: bool = False

    @property
    def epochs(self):
        return len(self.train_loss)

    @property
    def examples_per_sec(self):
        """Training examples per wall-clock second over all finished epochs."""
        seconds = sum(self.train_seconds)
        return sum(self.train_examples) / seconds if seconds else float("nan")

    def summary(self):
        """The closing line, in d2l's shape."""
        if not self.epochs:
            return f"no epoch finished on {self.device}"
        return (f"loss {self.train_loss[-1]:.3f}, train acc {self.train_acc[-1]:.3f}, "
                f"test acc {self.test_acc[-1]:.3f}, {self.examples_per_sec:.1f} examples/sec on {self.device}")

    def __repr__(self):
        return f"History({self.epochs} epochs, {self.precision}: {self.summary()})"


def choose_precision(device, precision="auto"):
    """Pick the autocast precision: bf16 on GPUs that support it, fp16 on older GPUs (e.g. a T4), fp32 on CPU."""
    device = torch.device(device)
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'auto', 'bf16', 'fp16' or 'fp32', got {precision!r}")
    return precision


def init_xavier(module):
    """d2l's initialisation: Xavier-uniform weights for every Linear and Conv2d layer (use with ``net.apply``)."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


class _Progress:
    """A progress bar for one epoch: ``\\r`` updates on stderr in a terminal, one updated line in a notebook."""

    def __init__(self, enabled):
        self.notebook = enabled and in_notebook()
        self.enabled = self.notebook or (enabled and sys.stderr.isatty())
        self._handle, self._last = None, 0.0

    def show(self, epoch, num_epochs, batch, num_batches, force=False):
        now = time.perf_counter()
        if not self.enabled or (not force and now - self._last < 0.5):
            return
        self._last = now
        width = 24
        done = width * batch // max(num_batches, 1)
        text = f"epoch {epoch}/{num_epochs} [{'=' * done}{' ' * (width - done)}] {batch}/{num_batches} batches"
        if self.notebook:
            from IPython.display import display

            if self._handle is None:
                self._handle = display({"text/plain": text}, raw=True, display_id=True)
            else:
                self._handle.update({"text/plain": text}, raw=True)
        else:
            sys.stderr.write("\r" + text)
            sys.stderr.flush()

    def end_epoch(self):
        if self.enabled and not self.notebook:
            sys.stderr.write("\r" + " " * 72 + "\r")
            sys.stderr.flush()


def _to_device(X, y, device, channels_last):
    X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
    if channels_last and X.dim() == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    return X, y


def evaluate_accuracy(net, data_iter, device=None, precision="fp32", channels_last=False):
    """Fraction of correctly classified examples of ``data_iter`` (batches X: (B, ...), y: (B,)).

    Under ``torchrun`` each rank evaluates its shard and the counts are summed over all ranks.
    """
    if device is None:
        device = next(iter(net.parameters()), torch.empty(0)).device
    device = torch.device(device)
    dtype = PRECISIONS[choose_precision(device, precision)]
    was_training = net.training
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    for X, y in data_iter:
        X, y = _to_device(X, y, device, channels_last)
        count_correct(net, dtype, X, y, correct)
        count += y.shape[0]
    net.train(was_training)
    correct, count = distributed.all_reduce_sum_(torch.stack([correct, torch.tensor(count, device=device)])).tolist()
    if count == 0:
        raise ValueError("evaluate_accuracy got an empty data iterator")
    return correct / count


evaluate_accuracy_gpu = evaluate_accuracy


def train(net, train_iter, test_iter, num_epochs, lr, device=None, *, optimizer=None, loss=None,
          init=init_xavier, precision="auto", channels_last=None, graphs=None, seed=0, compile=False,
          plot=True, progress=True, sync_batchnorm=False):
    """Train ``net`` with minibatch SGD and return a :class:`History`.

    ``train_iter``/``test_iter`` yield ``(X, y)`` with X: (B, C, H, W) float and y: (B,) int64 class indices;
    ``net`` maps X to logits (B, num_classes). Defaults follow d2l's ``train_ch6`` (Xavier init, plain SGD,
    cross-entropy) with mixed precision picked by :func:`choose_precision`. ``seed`` makes the run
    repeatable (``None`` leaves the random state alone); unless ``init=None`` (keep the current weights),
    every layer is re-initialised: PyTorch's defaults, then ``init`` (Xavier for conv and dense weights).
    On CUDA each full-size training step and test batch is replayed as a CUDA graph (``graphs=False``
    turns this off; it needs plain SGD and bf16/fp32; see ``steps.py``). ``compile`` passes the network
    through ``torch.compile`` instead (``True`` or a mode such as ``"reduce-overhead"``; opt-in because
    compiling takes minutes). Ctrl-C stops training and returns the
    finished epochs; a NaN loss raises :class:`TrainingDiverged`.

    Under ``torchrun`` (several processes) the call trains data-parallel with no change to it: ``net`` is
    wrapped in ``DistributedDataParallel``, ``train_iter`` must be a :class:`cnnlib.DeviceLoader` (it gives each
    rank its slice of every global batch), each rank's loss is weighted by its share of the global batch so
    that the gradient is the global batch's mean (the result equals one process up to rounding), the metric
    sums and the test counts are summed over ranks once per epoch, and only rank 0 prints and plots. CUDA
    graphs are off. BatchNorm statistics stay per process (each normalises with its own slice);
    ``sync_batchnorm=True`` uses ``nn.SyncBatchNorm`` across ranks instead, which needs CUDA.
    """
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if smoke_mode() and num_epochs > 1:
        distributed.print_main(f"[cnnlib] smoke run (CNNLIB_SMOKE=1): 1 epoch instead of {num_epochs}")
        num_epochs = 1
    world_size = distributed.world_size()
    if world_size > 1 and getattr(train_iter, "world_size", 1) != world_size:
        raise ValueError(f"{world_size} processes train together, but train_iter does not split the global "
                         f"batches among them: use cnnlib.load_fashion_mnist or a cnnlib.DeviceLoader created in "
                         f"each process (it reads RANK and WORLD_SIZE)")
    device = torch.device(device) if device is not None else try_gpu(distributed.local_rank())
    precision = choose_precision(device, precision)
    dtype = PRECISIONS[precision]
    channels_last = True if channels_last is None else channels_last  # faster convolutions on GPUs and CPUs

    if seed is not None:
        set_seed(seed)
    if init is not None:  # re-draw every parameter from the seeded generator, so runs repeat exactly
        for module in net.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        net.apply(init)
    net.to(device, memory_format=torch.channels_last) if channels_last else net.to(device)
    model = distributed.wrap(net, device, sync_batchnorm)
    model = torch.compile(model, mode=compile if isinstance(compile, str) else None) if compile else model
    optimizer = optimizer or torch.optim.SGD(net.parameters(), lr=lr)
    loss = loss or nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    if graphs is None:
        graphs = device.type == "cuda"
    graphs = (graphs and device.type == "cuda" and scaler is None and not compile and world_size == 1
              and type(optimizer) is torch.optim.SGD)
    step = evaluate = None  # built from the first batch when graphs are on
    sums = torch.zeros(2, device=device)  # [loss sum, correct predictions] of the current epoch

    history = History(device=str(device), precision=precision)
    main = distributed.is_main()
    animator = Animator(xlabel="epoch", xlim=[1, num_epochs] if num_epochs > 1 else None,
                        legend=["train loss", "train acc", "test acc"]) if plot and main else None
    bar = _Progress(progress and main)
    num_batches = len(train_iter)
    epoch = 0
    try:
        for epoch in range(1, num_epochs + 1):
            start = time.perf_counter()
            net.train()
            sums.zero_()
            count = 0
            for i, (X, y) in enumerate(train_iter):
                X, y = _to_device(X, y, device, channels_last)
                if graphs and step is None:
                    try:
                        step = GraphedTrainStep(model, loss, optimizer, dtype, X, y, sums)
                    except GraphUnsafe as err:
                        print(f"[cnnlib] training without CUDA graphs: {err}")
                        graphs = False
                if step is not None:
                    step(X, y)
                else:
                    weight = 1.0 if world_size == 1 else distributed.loss_weight(
                        y.shape[0], train_iter.global_batch_size(i), world_size)
                    train_step(model, loss, optimizer, scaler, dtype, X, y, sums, weight=weight)
                count += y.shape[0]
                bar.show(epoch, num_epochs, i + 1, num_batches)
            totals = distributed.all_reduce_sum_(torch.cat([sums, sums.new_tensor([count])]))
            loss_sum, train_correct, count = totals.tolist()  # the one sync of the training pass
            count = int(count)
            train_loss = loss_sum / count
            train_seconds = time.perf_counter() - start
            bar.show(epoch, num_epochs, num_batches, num_batches, force=True)
            bar.end_epoch()
            if not math.isfinite(train_loss):
                raise TrainingDiverged(
                    f"the training loss became {train_loss} in epoch {epoch} (lr={lr}). The weights have "
                    f"blown up: try a smaller learning rate, and check the inputs for NaN values. "
                    f"The {history.epochs} finished epochs are in this exception's .history.", history)
            if graphs:
                batches = (_to_device(X, y, device, channels_last) for X, y in test_iter)
                if evaluate is None:
                    first = next(iter(test_iter))
                    evaluate = GraphedEvaluation(model, dtype, *_to_device(*first, device, channels_last))
                test_acc = evaluate(batches)
            else:  # under DDP the plain network: evaluation needs no gradient synchronisation
                test_acc = evaluate_accuracy(net if world_size > 1 else model, test_iter, device, precision,
                                             channels_last)
            history.train_loss.append(train_loss)
            history.train_acc.append(train_correct / count)
            history.test_acc.append(test_acc)
            history.train_seconds.append(train_seconds)
            history.train_examples.append(count)
            history.seconds.append(time.perf_counter() - start)
            if animator is not None:
                animator.add(epoch, (train_loss, train_correct / count, test_acc))
    except KeyboardInterrupt:
        bar.end_epoch()
        history.interrupted = True
        distributed.print_main(f"Interrupted in epoch {epoch}: returning the {history.epochs} finished epochs.")
    distributed.print_main(history.summary())
    return history


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None):
    """d2l's name and signature for :func:`train`."""
    return train(net, train_iter, test_iter, num_epochs, lr, device)
