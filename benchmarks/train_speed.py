"""Claim: cnnlib's GPU-resident, mixed-precision loop trains the book's models several times faster than a
d2l-style loop on the same machine, at the same accuracy. Evidence: benchmarks/results/<device>.json.

Both loops train the same network (same init, same SGD, same hyperparameters: cnnlib.models.BOOK_MODELS) in
the same process, timed by wall clock per epoch, train and test pass, data loading included:

- d2l-style: torchvision FashionMNIST with PIL ``Resize`` + ``ToTensor`` in a 4-worker DataLoader (workers
  restarted each epoch), ``.to(device)`` per batch, fp32, metrics read with ``float()`` every batch.
- cnnlib: ``cnnlib.load_fashion_mnist`` (uint8 data on the device, resize with F.interpolate per batch) and
  ``cnnlib.train`` (bf16/fp16 autocast on CUDA, channels_last, one sync per epoch).

Examples:
    python benchmarks/train_speed.py --device cpu --models lenet --epochs 2 --d2l-epochs 2
    python benchmarks/train_speed.py --device cpu --models alexnet --subset 512 --epochs 2 --d2l-epochs 2
    python benchmarks/train_speed.py --device cuda --epochs 10 --d2l-epochs 2 --seeds 0 1 2
Each ``*_epoch_s`` is the median over that loop's epochs; all per-epoch times are kept in the JSON.
"""
import argparse
import json
import platform
import re
import statistics
import time
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

import cnnlib
from cnnlib import torchvision_root
from cnnlib.models import BOOK_MODELS

RESULTS = Path(__file__).resolve().parent / "results"


def d2l_style_loaders(batch_size, resize, subset):
    """d2l's ``load_data_fashion_mnist``: PIL transforms in 4 worker processes."""
    trans = [transforms.ToTensor()]
    if resize:
        trans.insert(0, transforms.Resize(resize))
    trans = transforms.Compose(trans)
    root = torchvision_root()
    train = torchvision.datasets.FashionMNIST(root=root, train=True, transform=trans, download=False)
    test = torchvision.datasets.FashionMNIST(root=root, train=False, transform=trans, download=False)
    if subset:
        train, test = Subset(train, range(subset)), Subset(test, range(min(subset, len(test))))
    return (DataLoader(train, batch_size, shuffle=True, num_workers=4),
            DataLoader(test, batch_size, shuffle=False, num_workers=4))


def d2l_accuracy(y_hat, y):
    cmp = y_hat.argmax(axis=1).type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())  # float(): a host sync every batch, as in d2l


def d2l_style_train(net, train_iter, test_iter, num_epochs, lr, device):
    """d2l's ``train_ch6`` without the plot: returns (per-epoch seconds, final test accuracy)."""
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    seconds, test_acc = [], 0.0
    for _ in range(num_epochs):
        start = time.perf_counter()
        metric = cnnlib.Accumulator(3)
        net.train()
        for X, y in train_iter:
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], d2l_accuracy(y_hat, y), X.shape[0])
        net.eval()
        correct = cnnlib.Accumulator(2)
        with torch.no_grad():
            for X, y in test_iter:
                X, y = X.to(device), y.to(device)
                correct.add(d2l_accuracy(net(X), y), y.numel())
        test_acc = correct[0] / correct[1]
        seconds.append(time.perf_counter() - start)
        print(f"  d2l-style epoch {len(seconds)}: {seconds[-1]:.2f} s, train loss {metric[0] / metric[2]:.3f}, "
              f"test acc {test_acc:.3f}", flush=True)
    return seconds, test_acc


def fresh_net(name, seed):
    """The model with d2l's init, drawn from ``seed``: both loops start from identical weights."""
    cnnlib.set_seed(seed)
    net = BOOK_MODELS[name]["build"]()
    net.apply(cnnlib.init_xavier)
    return net


def device_name(device):
    if device.type == "cuda":
        label = torch.cuda.get_device_name(device)
    else:
        label = f"cpu-{platform.machine()}-{torch.get_num_threads()}threads"
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def run(name, device, epochs, d2l_epochs, subset, seeds, compile_mode, graphs=None):
    s = BOOK_MODELS[name]
    row = dict(model=name, device=str(device), device_name=device_name(device), epochs=epochs,
               d2l_style_epochs=d2l_epochs, subset=subset, lr=s["lr"], batch_size=s["batch_size"],
               resize=s["resize"], torch=torch.__version__, compile=compile_mode or None,
               graphs=graphs is not False and device.type == "cuda" and not compile_mode)
    if d2l_epochs:
        print(f"{name}: d2l-style loop, {d2l_epochs} epochs", flush=True)
        train_iter, test_iter = d2l_style_loaders(s["batch_size"], s["resize"], subset)
        seconds, acc = d2l_style_train(fresh_net(name, seeds[0]), train_iter, test_iter, d2l_epochs, s["lr"], device)
        row.update(d2l_style_epoch_seconds=seconds, d2l_style_epoch_s=statistics.median(seconds),
                   d2l_style_test_acc=acc)
    accs = []
    for seed in seeds:
        print(f"{name}: cnnlib.train, {epochs} epochs, seed {seed}", flush=True)
        train_iter, test_iter = cnnlib.load_fashion_mnist(s["batch_size"], s["resize"], device=device, subset=subset)
        history = cnnlib.train(fresh_net(name, seed), train_iter, test_iter, epochs, s["lr"], device, init=None,
                               seed=seed, compile=compile_mode, graphs=graphs, plot=False, progress=False)
        accs.append(history.test_acc[-1])
        if seed == seeds[0]:
            row.update(cnnlib_epoch_seconds=history.seconds, cnnlib_epoch_s=statistics.median(history.seconds),
                       precision=history.precision, cnnlib_test_acc=history.test_acc[-1])
    row.update(cnnlib_test_acc_seeds=dict(zip(map(str, seeds), accs)),
               cnnlib_test_acc_mean=statistics.mean(accs),
               cnnlib_test_acc_std=statistics.stdev(accs) if len(accs) > 1 else 0.0)
    if d2l_epochs:
        row["ratio"] = row["d2l_style_epoch_s"] / row["cnnlib_epoch_s"]
    return row


def save(rows):
    """Merge ``rows`` into results/<device>.json, replacing earlier rows of the same model and settings."""
    path = RESULTS / f"{rows[0]['device_name']}.json"
    old = json.loads(path.read_text()) if path.exists() else []
    key = lambda r: (r["model"], r.get("subset"), r.get("compile"))
    new_keys = {key(r) for r in rows}
    merged = [r for r in old if key(r) not in new_keys] + rows
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1) + "\n")
    return path


def print_table(rows):
    print(f"\n{'model':<10}{'d2l-style s/epoch':>19}{'cnnlib s/epoch':>16}{'ratio':>8}"
          f"{'d2l-style acc':>15}{'cnnlib acc':>12}{'acc mean±std':>16}")
    for r in rows:
        d2l = r.get("d2l_style_epoch_s")
        print(f"{r['model']:<10}{d2l if d2l is not None else float('nan'):>19.2f}{r['cnnlib_epoch_s']:>16.2f}"
              f"{r.get('ratio', float('nan')):>8.2f}{r.get('d2l_style_test_acc', float('nan')):>15.3f}"
              f"{r['cnnlib_test_acc']:>12.3f}   {r['cnnlib_test_acc_mean']:.3f}±{r['cnnlib_test_acc_std']:.3f}")
    if all("d2l_style_epoch_s" in r for r in rows):
        d2l, ours = sum(r["d2l_style_epoch_s"] for r in rows), sum(r["cnnlib_epoch_s"] for r in rows)
        print(f"{'sum':<10}{d2l:>19.2f}{ours:>16.2f}{d2l / ours:>8.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(BOOK_MODELS), choices=list(BOOK_MODELS))
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: a GPU if there is one)")
    parser.add_argument("--epochs", type=int, default=2, help="cnnlib epochs per seed")
    parser.add_argument("--d2l-epochs", type=int, default=1, help="d2l-style epochs (0 skips it)")
    parser.add_argument("--subset", type=int, default=None, help="first N examples of each split (CPU runs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--compile", nargs="*", default=[], metavar="MODEL",
                        help='models to train with torch.compile(mode="reduce-overhead")')
    parser.add_argument("--eager", action="store_true", help="no CUDA graphs in cnnlib.train")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device) if args.device else cnnlib.try_gpu()
    rows = [run(m, device, args.epochs, args.d2l_epochs, args.subset, args.seeds,
                "reduce-overhead" if m in args.compile else None, False if args.eager else None) for m in args.models]
    print_table(rows)
    if not args.no_save:
        print(f"wrote {save(rows)}")
    return rows


if __name__ == "__main__":
    main()
