"""Train and evaluate a classifier, fast and honestly timed.

What makes it fast: data already on the device (see ``data.py``), mixed precision chosen by the device,
channels_last, CUDA graphs (steps.py), and metrics summed on the device and read back once per epoch instead of
every batch.
What makes it honest: examples/sec is training examples over wall-clock seconds, data loading included.
Under ``torchrun`` the same call trains data-parallel (``distributed.py``): DDP, metrics summed over ranks, output
from rank 0 only.
"""
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from . import distributed
from .plot import Animator, ProgressBar
from .steps import GraphedEvaluation, GraphedTrainStep, GraphUnsafe, count_correct, train_step
from .utils import set_seed, smoke_mode, try_gpu

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_said = set()  # the lines of _say_once already printed by this process


def _say_once(line):
    """Print ``line`` (rank 0 only) the first time this process wants to say it: a switch explained once,
    not in every training cell."""
    if line not in _said:
        _said.add(line)
        distributed.print_main(line)


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

    def add(self, train_loss, train_acc, test_acc, train_seconds, train_examples, seconds):
        """Record one finished epoch."""
        self.train_loss.append(train_loss)
        self.train_acc.append(train_acc)
        self.test_acc.append(test_acc)
        self.train_seconds.append(train_seconds)
        self.train_examples.append(train_examples)
        self.seconds.append(seconds)

    def summary(self):
        """The closing line, in d2l's shape."""
        if not self.epochs:
            return f"no epoch finished on {self.device}"
        return (f"loss {self.train_loss[-1]:.3f}, train acc {self.train_acc[-1]:.3f}, "
                f"test acc {self.test_acc[-1]:.3f}, {self.examples_per_sec:.1f} examples/sec on {self.device}")

    def __repr__(self):
        return f"History({self.epochs} epochs, {self.precision}: {self.summary()})"


def choose_precision(device, precision="auto"):
    """The autocast precision for ``device``: ``"auto"`` picks fp32 on the CPU, bf16 on GPUs of compute capability
    8.0 and above (A100, H100, RTX 30xx and later), fp16 with a GradScaler below (Colab's T4 is 7.5).

    The compute capability decides, not ``torch.cuda.is_bf16_supported()``: that answers True on a T4 too,
    because bf16 can be emulated there, but cuDNN has no bf16 convolutions below 8.0, so a T4 in bf16 is slow
    or fails where fp16 runs on its tensor cores.
    """
    device = torch.device(device)
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        major, _ = torch.cuda.get_device_capability(device)
        return "bf16" if major >= 8 else "fp16"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'auto', 'bf16', 'fp16' or 'fp32', got {precision!r}")
    return precision


def init_xavier(module):
    """d2l's initialisation: Xavier-uniform weights for every Linear and Conv2d layer (use with ``net.apply``)."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


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


def _epochs(num_epochs):
    """``num_epochs`` checked, and cut to one in a smoke run (with a line that says so)."""
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    if smoke_mode() and num_epochs > 1:
        distributed.print_main(f"[cnnlib] smoke run (CNNLIB_SMOKE=1): 1 epoch instead of {num_epochs}")
        return 1
    return num_epochs


def _optimizer(net, lr, optimizer):
    """The optimizer to train with: ``optimizer`` as given (``lr`` must then be None or its own rate), else plain
    SGD with learning rate ``lr``."""
    if optimizer is None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        return torch.optim.SGD(net.parameters(), lr=lr)
    own = optimizer.param_groups[0]["lr"]
    if lr is not None and lr != own:
        raise ValueError(f"lr={lr} was given together with an optimizer whose learning rate is {own}; the "
                         f"optimizer's own rate is the one used, so pass lr=None (or the same value)")
    return optimizer


def _reinitialize(net, init):
    """Re-draw every parameter from the (seeded) generator: PyTorch's defaults, then ``init``, so runs repeat."""
    for module in net.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    net.apply(init)


def _graphs_off_reason(graphs, device, scaler, compile, optimizer, scheduler):
    """Why CUDA graphs cannot be used for this run (None when they can). ``graphs=None`` means "where possible"."""
    if graphs is False:
        return "graphs=False"
    if device.type != "cuda":
        return None if graphs is None else f"CUDA graphs need a GPU, and this run is on {device}"
    if scaler is not None:
        return ("fp16 needs a GradScaler, whose step reads back whether the gradients are finite, which a graph "
                "cannot record (GPUs from compute capability 8.0 on train in bf16 with graphs)")
    if compile:
        return "torch.compile manages its own graphs (compile=...)"
    if distributed.is_distributed():
        return "several processes train together (DDP overlaps its communication with the backward pass)"
    if type(optimizer) is not torch.optim.SGD:
        return f"graphs are built for plain torch.optim.SGD, and the optimizer is {type(optimizer).__name__}"
    if scheduler is not None:
        return "a learning-rate scheduler changes the rate, which a captured step holds fixed"
    return None


def _first_batch(loader, device, channels_last):
    """A batch of ``loader`` to capture graphs with, drawn without moving the random number generators on."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        X, y = next(iter(loader))
    return _to_device(X, y, device, channels_last)


def _capture_failed(what, err):
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
    print(f"[cnnlib] {what} without CUDA graphs: capturing failed ({type(err).__name__}: {first_line}). "
          f"Under graphs forward() may not read values back to Python (.item(), print of a tensor, an if on a "
          f"tensor, nonzero); pass graphs=False to train eagerly without this attempt.")


def _train_step_fn(model, loss, optimizer, scaler, dtype, sums, train_iter, graph_batch):
    """``step(i, X, y)``: one training step on batch ``i``, replayed as a CUDA graph when ``graph_batch`` is a
    batch to capture it with (falling back to eager steps, with a message, if capturing fails)."""
    if graph_batch is not None:
        try:
            graphed = GraphedTrainStep(model, loss, optimizer, dtype, *graph_batch, sums)
            return lambda i, X, y: graphed(X, y)
        except GraphUnsafe as err:
            print(f"[cnnlib] training without CUDA graphs: {err}")
        except Exception as err:  # what CUDA raises when forward() syncs or branches on data during capture
            _capture_failed("training", err)
    world_size = distributed.world_size()

    def step(i, X, y):
        weight = 1.0 if world_size == 1 else distributed.loss_weight(
            y.shape[0], train_iter.global_batch_size(i), world_size)
        train_step(model, loss, optimizer, scaler, dtype, X, y, sums, weight=weight)
    return step


def _evaluate_fn(net, model, test_iter, device, precision, dtype, channels_last, graphed):
    """``evaluate()``: the test accuracy, with full-size batches replayed as a CUDA graph when ``graphed``."""
    if graphed:
        try:
            evaluation = GraphedEvaluation(model, dtype, *_first_batch(test_iter, device, channels_last))
            return lambda: evaluation(_to_device(X, y, device, channels_last) for X, y in test_iter)
        except Exception as err:
            _capture_failed("evaluating", err)
    # under DDP the plain network: evaluation needs no gradient synchronisation
    plain = net if distributed.is_distributed() else model
    return lambda: evaluate_accuracy(plain, test_iter, device, precision, channels_last)


def train(net, train_iter, test_iter, num_epochs, lr=None, device=None, *, optimizer=None, scheduler=None,
          loss=None, init=init_xavier, precision="auto", channels_last=None, graphs=None, seed=0, compile=False,
          plot=True, progress=True, summary=True, sync_batchnorm=False):
    """Train ``net`` with minibatch SGD and return a :class:`History`.

    ``train_iter``/``test_iter`` yield ``(X, y)`` with X: (B, C, H, W) float and y: (B,) int64 class indices;
    ``net`` maps X to logits (B, num_classes). Defaults follow d2l's ``train_ch6`` (Xavier init, plain SGD with
    learning rate ``lr``, cross-entropy) with mixed precision picked by :func:`choose_precision` (bf16 on GPUs
    of compute capability 8.0 and above; fp16 with a GradScaler below, e.g. Colab's T4; fp32 on the CPU).
    ``optimizer`` replaces the SGD (``lr`` is then None or the optimizer's own rate); ``scheduler``, a
    ``torch.optim.lr_scheduler`` of that optimizer, is stepped once after every epoch. ``seed`` makes the run
    repeatable (``None`` leaves the random state alone); unless ``init=None`` (keep the current weights),
    every layer is re-initialised: PyTorch's defaults, then ``init`` (Xavier for conv and dense weights).

    On CUDA each full-size training step and test batch is replayed as a CUDA graph (``graphs=False`` turns this
    off). A graph replays the GPU work that one step launched, so ``forward`` must do the same work on every
    batch: it may not read values back to Python (``.item()``, printing a tensor, an ``if`` on a tensor's value,
    ``nonzero``, boolean-mask indexing) and must update buffers in place (``.copy_()``) rather than assign new
    tensors. When capturing fails, one line says why and the run trains eagerly. Graphs are also off, with a
    line that says why, for fp16 (its GradScaler syncs), ``compile``, DDP, optimizers other than plain SGD and a
    ``scheduler``. ``compile`` passes the network through ``torch.compile`` instead (``True`` or a mode such as
    ``"reduce-overhead"``; opt-in because compiling takes minutes). Ctrl-C stops training and returns the
    finished epochs; a NaN loss raises :class:`TrainingDiverged`. ``plot``, ``progress`` and ``summary`` switch
    off the live plot, the progress bar and the closing line.

    Under ``torchrun`` (several processes) the call trains data-parallel with no change to it: ``net`` is
    wrapped in ``DistributedDataParallel``, ``train_iter`` must be a :class:`cnnlib.DeviceLoader` (it gives each
    rank its slice of every global batch), each rank's loss is weighted by its share of the global batch so
    that the gradient is the global batch's mean (the result equals one process up to rounding), the metric
    sums and the test counts are summed over ranks once per epoch, and only rank 0 prints and plots.
    An example's augmentation does not depend on the rank that holds it (augmented runs equal one process too);
    dropout masks are each rank's own, so with dropout the result is a different, equally likely draw.
    BatchNorm statistics stay per process (each normalises with its own slice); ``sync_batchnorm=True`` uses
    ``nn.SyncBatchNorm`` across ranks instead, which needs CUDA.
    """
    num_epochs = _epochs(num_epochs)
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
    if init is not None:
        _reinitialize(net, init)
    if seed is not None:
        distributed.seed_own_draws(seed)  # dropout differs between ranks; rank 0 draws what one process would
    net.to(device, memory_format=torch.channels_last) if channels_last else net.to(device)
    model = distributed.wrap(net, device, sync_batchnorm)
    model = torch.compile(model, mode=compile if isinstance(compile, str) else None) if compile else model
    optimizer = _optimizer(net, lr, optimizer)
    loss = loss or nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    off = _graphs_off_reason(graphs, device, scaler, compile, optimizer, scheduler)
    graphed = device.type == "cuda" and off is None
    if off is not None and graphs is not False and (graphs or device.type == "cuda"):
        _say_once(f"[cnnlib] training without CUDA graphs: {off}")
    sums = torch.zeros(2, device=device)  # [loss sum, correct predictions] of the current epoch
    net.train()
    step = _train_step_fn(model, loss, optimizer, scaler, dtype, sums, train_iter,
                          _first_batch(train_iter, device, channels_last) if graphed else None)
    evaluate = _evaluate_fn(net, model, test_iter, device, precision, dtype, channels_last, graphed)
    history = History(device=str(device), precision=precision)
    main = distributed.is_main()
    animator = Animator(xlabel="epoch", xlim=[1, num_epochs] if num_epochs > 1 else None,
                        legend=["train loss", "train acc", "test acc"]) if plot and main else None
    bar = ProgressBar(progress and main)
    num_batches = len(train_iter)
    epoch = 0
    try:
        for epoch in range(1, num_epochs + 1):
            start = time.perf_counter()
            net.train()
            sums.zero_()
            count = 0
            for i, (X, y) in enumerate(train_iter):
                step(i, *_to_device(X, y, device, channels_last))
                count += y.shape[0]
                bar.show(epoch, num_epochs, i + 1, num_batches)
            totals = distributed.all_reduce_sum_(torch.cat([sums, sums.new_tensor([count])]))
            loss_sum, train_correct, count = totals.tolist()  # the one sync of the training pass
            train_seconds = time.perf_counter() - start
            bar.show(epoch, num_epochs, num_batches, num_batches, force=True)
            bar.end_epoch()
            train_loss = loss_sum / count
            if not math.isfinite(train_loss):
                raise TrainingDiverged(
                    f"the training loss became {train_loss} in epoch {epoch} (learning rate "
                    f"{optimizer.param_groups[0]['lr']}). The weights have blown up: try a smaller learning rate, "
                    f"and check the inputs for NaN values. The {history.epochs} finished epochs are in this "
                    f"exception's .history.", history)
            test_acc = evaluate()
            if scheduler is not None:
                scheduler.step()
            history.add(train_loss, train_correct / count, test_acc, train_seconds, int(count),
                        time.perf_counter() - start)
            if animator is not None:
                animator.add(epoch, (train_loss, train_correct / count, test_acc))
    except KeyboardInterrupt:
        bar.end_epoch()
        history.interrupted = True
        distributed.print_main(f"Interrupted in epoch {epoch}: returning the {history.epochs} finished epochs.")
    if summary:
        distributed.print_main(history.summary())
    return history


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None):
    """d2l's name and signature for :func:`train`."""
    return train(net, train_iter, test_iter, num_epochs, lr, device)
