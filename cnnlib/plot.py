"""What training shows while it runs, and plots for the book: a progress bar, a live training plot, image grids
and feature maps.

The chapters' code is the same in both languages, so the text cnnlib draws (legends, axis labels, class
names) is the same too. Chinese text in a plot (a student's own titles, say) renders wherever a CJK font is
installed: the common ones are added as fallbacks after matplotlib's default font, so Latin text is unchanged.
"""
import io
import sys
import time

import matplotlib
import torch
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei",
             "PingFang SC", "SimHei")


def _add_cjk_fallback():
    """Append an installed CJK font to matplotlib's font families: glyphs the default font lacks come from it
    (matplotlib >= 3.6 falls back glyph by glyph along ``font.family``, not along a generic family's list)."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    families = list(matplotlib.rcParams["font.family"])
    cjk = next((f for f in CJK_FONTS if f in installed), None)
    if cjk is not None and cjk not in families:
        matplotlib.rcParams["font.family"] = families + [cjk]


_add_cjk_fallback()


def in_notebook():
    """True inside a Jupyter or Colab kernel (a front end that can show images), False in a terminal."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def _png(fig):
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


class ProgressBar:
    """A progress bar for one epoch: ``\\r`` updates on stderr in a terminal, one updated line in a notebook.

    ``enabled=False``, or a terminal whose stderr is not a tty (a log file), shows nothing. Updates come at most
    twice a second, so drawing it costs nothing measurable.
    """

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


class Animator:
    """Draw curves point by point while a model trains.

    In Jupyter and Colab the figure is updated in place (one output, so the saved notebook keeps exactly one
    final figure). In a terminal each :meth:`add` prints one line of text instead.
    """

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None, xscale="linear",
                 yscale="linear", fmts=("-", "m--", "g-.", "r:"), figsize=(3.5, 2.5), text=None):
        self.legend = list(legend or [])
        self.fmts = fmts
        self.xlabel = xlabel
        self.X, self.Y = [], []
        self.text = not in_notebook() if text is None else text
        self._handle = None
        # A Figure made without pyplot is not shown again by the inline backend at the end of the cell.
        self.fig = Figure(figsize=figsize)
        self.axes = self.fig.add_subplot()
        self._config = dict(xlabel=xlabel, ylabel=ylabel, xlim=xlim, ylim=ylim, xscale=xscale, yscale=yscale)

    def add(self, x, y):
        """Add one point per curve: ``x`` a number, ``y`` a number or one number per curve."""
        ys = list(y) if hasattr(y, "__len__") else [y]
        if not self.X:
            self.X, self.Y = [[] for _ in ys], [[] for _ in ys]
        if len(ys) != len(self.Y):
            raise ValueError(f"this Animator draws {len(self.Y)} curves, add() got {len(ys)} values")
        for i, v in enumerate(ys):
            if v is not None:
                self.X[i].append(x)
                self.Y[i].append(float(v))
        if self.text:
            names = self.legend or [f"y{i}" for i in range(len(ys))]
            pairs = ", ".join(f"{n} {v:.3f}" for n, v in zip(names, ys) if v is not None)
            print(f"{self.xlabel or 'x'} {x:g}: {pairs}", flush=True)
        else:
            self._draw()

    def _draw(self):
        from IPython.display import Image, display

        ax = self.axes
        ax.cla()
        for x, y, fmt in zip(self.X, self.Y, self.fmts):
            ax.plot(x, y, fmt)
        c = self._config
        ax.set_xlabel(c["xlabel"] or "")
        ax.set_ylabel(c["ylabel"] or "")
        ax.set_xscale(c["xscale"])
        ax.set_yscale(c["yscale"])
        if c["xlim"]:
            ax.set_xlim(c["xlim"])
        if c["ylim"]:
            ax.set_ylim(c["ylim"])
        if self.legend:
            ax.legend(self.legend)
        ax.grid(True)
        self.fig.tight_layout()
        image = Image(data=_png(self.fig), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)


def _as_images(imgs):
    """A tensor (N, H, W), (N, 1, H, W) or (N, 3, H, W), or a list of such images, as a list of arrays."""
    out = []
    for img in imgs:
        img = torch.as_tensor(img).detach().float().cpu()
        if img.dim() == 3 and img.shape[0] in (1, 3):
            img = img.squeeze(0) if img.shape[0] == 1 else img.permute(1, 2, 0)
        if img.dim() not in (2, 3):
            raise ValueError(f"each image must be (H, W), (1, H, W) or (3, H, W), got {tuple(img.shape)}")
        out.append(img.numpy())
    return out


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5, cmap="gray"):
    """Show up to ``num_rows * num_cols`` images in a grid and return the matplotlib axes (a flat array)."""
    import matplotlib.pyplot as plt

    images = _as_images(imgs)
    if len(images) > num_rows * num_cols:
        raise ValueError(f"{len(images)} images do not fit a {num_rows}x{num_cols} grid")
    if titles is not None and len(titles) < len(images):
        raise ValueError(f"{len(images)} images but only {len(titles)} titles")
    _, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale), squeeze=False)
    axes = axes.flatten()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    return axes


def show_feature_maps(maps, num_cols=8, titles=None, scale=1.2, cmap="viridis"):
    """Show each channel of ``maps`` (C, H, W) (e.g. feature maps, or kernels of one input channel)."""
    maps = torch.as_tensor(maps).detach()
    if maps.dim() != 3:
        raise ValueError(f"maps must be (C, H, W), got shape {tuple(maps.shape)}; "
                         f"for a batch pick one example, e.g. maps[0]")
    num_rows = -(-len(maps) // num_cols)
    return show_images(list(maps), num_rows, min(num_cols, len(maps)), titles, scale, cmap)

