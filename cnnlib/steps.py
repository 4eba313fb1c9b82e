"""One training step and one evaluation pass, run eagerly or replayed as a CUDA graph.

Small networks on a fast GPU are launch-bound: GoogLeNet at 96x96 launches hundreds of small kernels per step
and the GPU idles between them. A CUDA graph records the whole step (forward, backward, SGD update, metric
sums) once and replays it with a single launch. Capturing needs no compiler and takes a fraction of a second,
so it is on by default on CUDA (``train(graphs=False)`` turns it off).

Metric sums live in a device tensor ``sums`` = [loss sum, correct predictions] that every step adds to; the host
reads it once per epoch.
"""
import torch


def autocast(device, dtype):
    """Autocast to ``dtype`` (None: off). The weight-cast cache is off so the same code can be graph-captured."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None, cache_enabled=False)


def train_step(model, loss, optimizer, scaler, dtype, X, y, sums, set_to_none=True, weight=1.0):
    """One SGD step on a batch X: (B, C, H, W), y: (B,); adds B * loss and the correct count to ``sums``.

    The gradient is that of ``weight * loss``; data-parallel training uses it for a rank whose slice of the
    global batch is larger or smaller than the others' (see ``distributed.loss_weight``).
    """
    with autocast(X.device, dtype):
        y_hat = model(X)
        l = loss(y_hat, y)
    optimizer.zero_grad(set_to_none=set_to_none)
    objective = l if weight == 1.0 else l * weight
    if scaler is not None:
        scaler.scale(objective).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        objective.backward()
        optimizer.step()
    with torch.no_grad():
        sums[0] += l.detach().float() * y.shape[0]
        sums[1] += (y_hat.argmax(dim=1) == y).sum()


class GraphUnsafe(RuntimeError):
    """The model replaces tensors in ``forward`` instead of updating them in place, so a graph cannot replay it."""


def _tensor_slots(model):
    """Every tensor a module holds (parameters, buffers, plain attributes), keyed by where it is held."""
    slots = {}
    for module in model.modules():
        for store in (module._parameters, module._buffers, vars(module)):
            for name, value in store.items():
                if isinstance(value, torch.Tensor):
                    slots[(module, id(store), name)] = (store, value)
    return slots


def _check_in_place(before, model):
    """Raise :class:`GraphUnsafe` (after putting the old tensors back) if a step swapped any tensor for a new one."""
    after = _tensor_slots(model)
    changed = [key for key, (_, value) in before.items() if key not in after or after[key][1] is not value]
    if changed:
        for key in changed:
            store, value = before[key]
            store[key[2]] = value
        names = sorted({f"{type(key[0]).__name__}.{key[2]}" for key in changed})
        raise GraphUnsafe(f"{', '.join(names)} is replaced in forward() rather than updated in place "
                          f"(e.g. with .copy_() on a registered buffer), which CUDA graphs cannot replay")


def _state(model, optimizer):
    tensors = list(model.parameters()) + list(model.buffers())
    for state in optimizer.state.values():
        tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return tensors


def _capture(run, warmups, after_warmup=None):
    """Run ``run()`` ``warmups`` times on a side stream, call ``after_warmup()``, then record one ``run()`` as a
    CUDA graph and return it.

    The warm-up lets cuDNN pick its algorithms and creates lazily allocated state (gradients, optimizer
    buffers) outside the graph, as CUDA graph capture requires.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmups):
            run()
    torch.cuda.current_stream().wait_stream(side)
    if after_warmup is not None:
        after_warmup()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return graph


class _StaticBatch:
    """The input tensors a graph reads: a batch X: (B, ...), y: (B,) of the shape it was captured with."""

    def __init__(self, X, y):
        self.X, self.y = X.clone(), y.clone()

    def replay_or(self, graph, X, y, eager):
        """Copy X, y in and replay ``graph`` if they have the captured shape; else call ``eager(X, y)``."""
        if X.shape == self.X.shape and y.shape == self.y.shape:
            self.X.copy_(X)
            self.y.copy_(y)
            graph.replay()
        else:
            eager(X, y)


class GraphedTrainStep:
    """:func:`train_step` captured as a CUDA graph for batches shaped like X: (B, C, H, W), y: (B,).

    Batches of another shape (the last, smaller batch of an epoch) run eagerly on the same weights and gradients.
    Capturing needs a few warm-up steps; the weights, buffers and optimizer state are restored afterwards, so
    the run trains exactly as the eager loop would. Supports plain ``torch.optim.SGD`` (no GradScaler).
    Raises :class:`GraphUnsafe` if the warm-up shows the model replacing tensors rather than updating them, and
    whatever CUDA raises if ``forward`` does something a graph cannot record (see ``training.train``).
    """

    def __init__(self, model, loss, optimizer, dtype, X, y, sums):
        self.args = (model, loss, optimizer, None, dtype)
        self.sums = sums
        self.batch = _StaticBatch(X, y)
        with torch.no_grad():
            saved = [t.clone() for t in [sums] + _state(model, optimizer)]
        slots = _tensor_slots(model)

        def check_and_restore():
            try:
                _check_in_place(slots, model)
            finally:
                self._restore(model, optimizer, saved)
            optimizer.zero_grad(set_to_none=True)

        try:
            self.graph = _capture(lambda: train_step(*self.args, self.batch.X, self.batch.y, sums), 3,
                                  check_and_restore)
        except BaseException:
            self._restore(model, optimizer, saved)  # a failed capture leaves the run as if never tried
            raise

    def _restore(self, model, optimizer, saved):
        """Undo the warm-up steps (SGD's momentum buffers restart at zero, as if new)."""
        with torch.no_grad():
            current = [self.sums] + _state(model, optimizer)
            for t, s in zip(current, saved + [None] * (len(current) - len(saved))):
                t.copy_(s) if s is not None else t.zero_()

    def __call__(self, X, y):
        # another shape keeps the captured gradient tensors: zero them in place instead of dropping them
        self.batch.replay_or(self.graph, X, y,
                             lambda X, y: train_step(*self.args, X, y, self.sums, set_to_none=False))


def count_correct(model, dtype, X, y, correct):
    """Add the number of correct predictions of ``model`` on X: (B, ...), y: (B,) to ``correct``."""
    with torch.no_grad(), autocast(X.device, dtype):
        correct += (model(X).argmax(dim=1) == y).sum()


class GraphedEvaluation:
    """Accuracy of ``model`` (in eval mode) over a data iterator, full-size batches X: (B, ...), y: (B,) replayed
    as a CUDA graph captured for the shape of the given X, y."""

    def __init__(self, model, dtype, X, y):
        self.model, self.dtype = model, dtype
        self.correct = torch.zeros((), dtype=torch.int64, device=X.device)
        self.batch = _StaticBatch(X, y)
        was_training = model.training
        model.eval()
        try:
            self.graph = _capture(lambda: count_correct(model, dtype, self.batch.X, self.batch.y, self.correct), 2)
        finally:
            model.train(was_training)

    def __call__(self, batches):
        """``batches`` yields (X, y) already on the device; returns the accuracy as a float."""
        was_training = self.model.training
        self.model.eval()
        self.correct.zero_()
        count = 0
        for X, y in batches:
            self.batch.replay_or(self.graph, X, y,
                                 lambda X, y: count_correct(self.model, self.dtype, X, y, self.correct))
            count += y.shape[0]
        self.model.train(was_training)
        return self.correct.item() / count
