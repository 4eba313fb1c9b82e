"""d2l-en's ``ProgressBoard``: curves of training progress, averaged over every ``every_n`` points.

d2l reads every value back to the host as it arrives, a GPU sync per minibatch. This board keeps tensor values
on their device, averages them there, and reads them back when it draws. Inside :meth:`ProgressBoard.batched`
(which ``Trainer.fit`` uses) it draws only on :meth:`ProgressBoard.flush`, at the end of each epoch: one sync.
"""
import collections
import contextlib
import io
import itertools

import torch
from matplotlib.figure import Figure

from cnnlib.plot import in_notebook

from .hyperparameters import HyperParameters


class ProgressBoard(HyperParameters):
    """Curves drawn point by point; each curve is named by its ``label`` (e.g. ``'train_loss'``).

    In Jupyter and Colab one figure is updated in place. In a terminal each drawing prints one line with the
    latest value of every curve that changed. ``display=False`` keeps the points (``board.data``) without drawing.
    """

    def __init__(self, xlabel=None, ylabel=None, xlim=None, ylim=None, xscale="linear", yscale="linear",
                 ls=("-", "--", "-.", ":"), colors=("C0", "C1", "C2", "C3"), fig=None, axes=None,
                 figsize=(3.5, 2.5), display=True):
        self.save_hyperparameters()
        self.raw_points = collections.OrderedDict()  # label -> points not yet averaged: [(x, y), ...]
        self.data = collections.OrderedDict()  # label -> averaged points [[x, y], ...]; y a tensor until drawn
        self._unread = []  # (label, index) of averaged points whose y is still a tensor
        self._changed = collections.OrderedDict()  # label -> None, curves with points not drawn yet
        self._deferred = False
        self._handle = None

    def draw(self, x, y, label, every_n=1):
        """Add the point (x, y) to the curve ``label``; every ``every_n`` points are averaged into one.

        ``y`` is a number or a 0-d tensor (kept on its device until drawn).
        """
        if not isinstance(every_n, int) or every_n < 1:
            raise ValueError(f"every_n must be a positive int, got {every_n!r}")
        points = self.raw_points.setdefault(label, [])
        line = self.data.setdefault(label, [])
        points.append((x, y))
        if len(points) < every_n:
            return
        xs, ys = zip(*points)
        points.clear()
        if all(isinstance(v, torch.Tensor) for v in ys):
            mean_y = torch.stack([v.detach().float().reshape(()) for v in ys]).mean()
            self._unread.append((label, len(line)))
        else:
            mean_y = sum(float(v) for v in ys) / len(ys)
        line.append([sum(xs) / len(xs), mean_y])
        self._changed[label] = None
        if not self._deferred:
            self.flush()

    @contextlib.contextmanager
    def batched(self):
        """Inside this block :meth:`draw` only collects points; :meth:`flush` draws them (and so on leaving)."""
        self._deferred = True
        try:
            yield self
        finally:
            self._deferred = False
            self.flush()

    def flush(self):
        """Read every value still on a device back at once (one sync) and draw the curves that changed."""
        if self._unread:
            values = torch.stack([self.data[label][i][1] for label, i in self._unread]).tolist()
            for (label, i), value in zip(self._unread, values):
                self.data[label][i][1] = value
            self._unread.clear()
        if self._changed and self.display:
            if in_notebook():
                self._show_figure()
            else:
                self._print_line()
        self._changed.clear()

    def _print_line(self):
        x = max(self.data[label][-1][0] for label in self._changed)
        values = ", ".join(f"{label} {self.data[label][-1][1]:.3f}" for label in self._changed)
        print(f"{self.xlabel or 'x'} {x:g}: {values}", flush=True)

    def _show_figure(self):
        from IPython.display import Image, display

        if self.axes is None:
            # A Figure made without pyplot is not shown again by the inline backend at the end of the cell.
            self.fig = self.fig or Figure(figsize=self.figsize)
            self.axes = self.fig.add_subplot()
        ax = self.axes
        ax.cla()
        for (label, line), ls, color in zip(self.data.items(), itertools.cycle(self.ls), itertools.cycle(self.colors)):
            ax.plot([p[0] for p in line], [p[1] for p in line], linestyle=ls, color=color, label=label)
        if self.xlim:
            ax.set_xlim(self.xlim)
        if self.ylim:
            ax.set_ylim(self.ylim)
        ax.set_xlabel(self.xlabel or "")
        ax.set_ylabel(self.ylabel or "")
        ax.set_xscale(self.xscale)
        ax.set_yscale(self.yscale)
        ax.legend()
        buffer = io.BytesIO()
        ax.figure.savefig(buffer, format="png", bbox_inches="tight")
        image = Image(data=buffer.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
