"""A layer-by-layer table of a network: output shape, parameters and FLOPs."""
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class Summary(list):
    """Rows of :func:`summary` (dicts with ``name``, ``type``, ``output_shape``, ``params``, ``flops``)."""

    total_params = 0
    total_flops = 0

    def table(self):
        head = f"{'layer':<22}{'type':<20}{'output shape':<22}{'params':>12}{'FLOPs':>16}"
        lines = [head, "-" * len(head)]
        for r in self:
            lines.append(f"{r['name']:<22}{r['type']:<20}{str(r['output_shape']):<22}"
                         f"{r['params']:>12,}{r['flops']:>16,}")
        lines += ["-" * len(head), f"{'total':<64}{self.total_params:>12,}{self.total_flops:>16,}"]
        return "\n".join(lines)

    def __repr__(self):
        return f"Summary({len(self)} layers, {self.total_params:,} parameters, {self.total_flops:,} FLOPs)"


def _shape(out):
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)):
        return [_shape(o) for o in out]
    return type(out).__name__


def summary(net, input_shape, device=None, print_table=True):
    """Run one forward pass of zeros shaped ``input_shape`` (e.g. (1, 1, 28, 28)) and tabulate every leaf layer.

    FLOPs are counted by ``torch.utils.flop_counter`` (a multiply-add counts as 2) for the whole
    ``input_shape``, batch included. Returns a :class:`Summary`; prints its table unless ``print_table=False``.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be an nn.Module, got {type(net).__name__}")
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError("input_shape must be positive ints including the batch, e.g. (1, 1, 28, 28), "
                         f"got {input_shape!r}")
    if device is None:
        device = next(iter(net.parameters()), torch.empty(0)).device
    rows, hooks = Summary(), []
    root = type(net).__name__
    for name, module in net.named_modules():
        if name and not list(module.children()):
            def hook(module, inputs, output, name=name):
                rows.append(dict(name=name, type=type(module).__name__, output_shape=_shape(output),
                                 params=sum(p.numel() for p in module.parameters(recurse=False))))
            hooks.append(module.register_forward_hook(hook))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(torch.zeros(shape, device=device))
    except RuntimeError as err:
        raise ValueError(f"{root} cannot take an input of shape {shape}: {err}") from None
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    counts = counter.get_flop_counts()
    for r in rows:
        r["flops"] = int(sum(counts.get(f"{root}.{r['name']}", {}).values()))
    rows.total_params = sum(p.numel() for p in net.parameters())
    rows.total_flops = int(sum(counts.get("Global", {}).values()))
    if print_table:
        print(rows.table())
    return rows
