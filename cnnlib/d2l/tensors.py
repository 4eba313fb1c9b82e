"""d2l's framework-neutral tensor names (``d2l.tensor``, ``d2l.reshape``, ``d2l.reduce_sum``...) for PyTorch.

d2l writes its shared code once for several frameworks and maps each name to the framework's own function.
Here each name is the PyTorch function, or a call of the tensor method d2l maps it to: ``d2l.reshape(X, shape)``
is ``X.reshape(shape)``, ``d2l.transpose(X)`` is ``X.t()``, ``d2l.size(X)`` is ``X.numel()``.
"""
import torch


def _method(name, doc):
    """A function ``f(x, *args, **kwargs)`` that returns ``x.<name>(*args, **kwargs)``."""

    def call(x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)

    call.__doc__ = doc
    return call


tensor = torch.tensor
zeros = torch.zeros
zeros_like = torch.zeros_like
ones = torch.ones
ones_like = torch.ones_like
arange = torch.arange
linspace = torch.linspace
meshgrid = torch.meshgrid
normal = torch.normal
rand = torch.rand
randn = torch.randn
eye = torch.eye
matmul = torch.matmul
batch_matmul = torch.bmm
concat = torch.cat
stack = torch.stack
abs = torch.abs
exp = torch.exp
log = torch.log
sin = torch.sin
sinh = torch.sinh
cos = torch.cos
cosh = torch.cosh
tanh = torch.tanh
sigmoid = torch.sigmoid
int32 = torch.int32
int64 = torch.int64
float32 = torch.float32

reshape = _method("reshape", "``reshape(X, shape)``: X with a new shape, e.g. ``reshape(X, (1, 1, 6, 8))``.")
reduce_sum = _method("sum", "``reduce_sum(X, *dims)``: the sum of X's elements (over ``dims`` if given).")
reduce_mean = _method("mean", "``reduce_mean(X, *dims)``: the mean of X's elements (over ``dims`` if given).")
argmax = _method("argmax", "``argmax(X, axis)``: indices of the largest elements along ``axis``.")
astype = _method("type", "``astype(X, dtype)``: X converted to ``dtype``.")
transpose = _method("t", "``transpose(X)``: the transpose of a matrix X (h, w) -> (w, h).")
size = _method("numel", "``size(X)``: the number of elements of X (an int).")
to = _method("to", "``to(X, device)``: X on ``device`` (or converted to a dtype).")
expand_dims = _method("unsqueeze", "``expand_dims(X, axis)``: X with a new axis of length 1 at ``axis``.")
swapaxes = _method("swapaxes", "``swapaxes(X, a, b)``: X with axes ``a`` and ``b`` exchanged.")
repeat = _method("repeat", "``repeat(X, *sizes)``: X tiled ``sizes`` times along each axis.")


def numpy(x, *args, **kwargs):
    """``numpy(X)``: X as a NumPy array (detached from autograd and copied to the CPU first)."""
    return x.detach().cpu().numpy(*args, **kwargs)


def cpu():
    """The CPU device."""
    return torch.device("cpu")


def gpu(i=0):
    """The device ``cuda:i`` (whether it exists or not; :func:`cnnlib.try_gpu` falls back to the CPU)."""
    return torch.device(f"cuda:{i}")


def num_gpus():
    """The number of visible GPUs."""
    return torch.cuda.device_count()
