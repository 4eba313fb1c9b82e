"""Train one of the book's networks on Fashion-MNIST from the command line.

    python -m cnnlib.run lenet --epochs 10
    torchrun --standalone --nproc_per_node=2 -m cnnlib.run lenet --epochs 10     # 2 processes, data-parallel

Each model trains with its chapter's settings (``cnnlib.models.BOOK_MODELS``) unless an option says otherwise.
Under ``torchrun`` every process runs this same program; ``--batch-size`` is the global batch, split evenly
among the processes, and only rank 0 prints and writes files.
"""
import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from torch.distributed.elastic.multiprocessing.errors import record

from . import distributed
from .fashion_mnist import load_fashion_mnist
from .datafiles import DatasetError, write_atomically
from .models import BOOK_MODELS
from .training import PRECISIONS, TrainingDiverged, train


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line, exit code 2 (argparse's convention), printed by rank 0 only."""
        if distributed.is_main():
            sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _device(text):
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: no GPU is visible to PyTorch here (use --device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        gpus = ", ".join(f"cuda:{i}" for i in range(count))
        raise argparse.ArgumentTypeError(f"{text}: this machine has {count} GPU{'s' * (count != 1)} ({gpus})")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r}: cnnlib trains on cpu or cuda")
    return device


def _output_path(text):
    path = Path(text).expanduser()
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    return path


def build_parser():
    models = ", ".join(BOOK_MODELS)
    parser = _Parser(
        prog="python -m cnnlib.run",
        description="Train one of the book's networks on Fashion-MNIST with its chapter's settings. "
                    "Run it under torchrun to train data-parallel on several processes.",
        epilog=f"models: {models}. Example: torchrun --standalone --nproc_per_node=2 -m cnnlib.run lenet")
    parser.add_argument("model", metavar="MODEL", choices=list(BOOK_MODELS), help=f"one of: {models}")
    parser.add_argument("--epochs", type=_positive(int), default=10, help="number of epochs (default 10)")
    parser.add_argument("--batch-size", type=_positive(int),
                        help="global batch size, divided among the processes (default: the chapter's)")
    parser.add_argument("--lr", type=_positive(float), help="learning rate of SGD (default: the chapter's)")
    parser.add_argument("--subset", type=_positive(int), metavar="N",
                        help="train and test on the first N examples of each split")
    parser.add_argument("--device", type=_device,
                        help="cpu or cuda (default: cuda if available); under torchrun rank r takes cuda:LOCAL_RANK")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--precision", choices=["auto", *PRECISIONS], default="auto",
                        help="autocast precision (default auto: bf16/fp16 on CUDA, fp32 on the CPU)")
    parser.add_argument("--sync-bn", action="store_true",
                        help="BatchNorm statistics over the global batch (SyncBatchNorm; CUDA only)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar (it is drawn on stderr when that is a terminal)")
    parser.add_argument("--save", type=_output_path, metavar="PATH", help="write the trained state_dict here")
    parser.add_argument("--json", type=_output_path, metavar="PATH", help="write the history here, as JSON")
    return parser


def parse_args(argv=None):
    """Parse and check the options; a bad one exits with code 2 and one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    spec = BOOK_MODELS[args.model]
    args.batch_size = args.batch_size or spec["batch_size"]
    args.lr = args.lr or spec["lr"]
    world = distributed.world_size()
    if args.batch_size % world:
        parser.error(f"--batch-size {args.batch_size} is not divisible by the {world} processes; "
                     f"use a multiple of {world}")
    if args.sync_bn and (args.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")).type != "cuda":
        parser.error("--sync-bn needs CUDA; on the CPU BatchNorm statistics stay per process")
    return args


def _save_outputs(args, net, history):
    if args.save:
        state = {name: tensor.detach().cpu() for name, tensor in net.state_dict().items()}
        write_atomically(args.save, lambda f: torch.save(state, f))
    if args.json:
        record_ = {"model": args.model, "world_size": distributed.world_size(), "batch_size": args.batch_size,
                   "lr": args.lr, "seed": args.seed, "epochs_asked": args.epochs, **asdict(history),
                   "examples_per_sec": history.examples_per_sec, "summary": history.summary()}
        text = json.dumps(record_, indent=2) + "\n"
        write_atomically(args.json, lambda f: f.write(text.encode()))


def main(argv=None):
    """Run the command line; returns the exit code (0, or 130 when interrupted by Ctrl-C)."""
    args = parse_args(argv)
    try:
        device = distributed.setup(args.device)
    except distributed.TooFewGPUs as err:  # one line per rank that has no GPU, not a traceback each
        sys.stderr.write(f"python -m cnnlib.run: error: {err}\n")
        return 2
    try:
        spec = BOOK_MODELS[args.model]
        train_iter, test_iter = load_fashion_mnist(args.batch_size, spec["resize"], device=device,
                                                   subset=args.subset)
        net = spec["build"]()
        history = train(net, train_iter, test_iter, args.epochs, args.lr, device, seed=args.seed,
                        precision=args.precision, sync_batchnorm=args.sync_bn, progress=args.progress)
        if distributed.is_main():
            _save_outputs(args, net, history)
    except (DatasetError, TrainingDiverged) as err:
        where = f"rank {distributed.rank()}: " if distributed.is_distributed() else ""
        sys.stderr.write(f"python -m cnnlib.run: error: {where}{err}\n")
        return 1
    finally:
        distributed.teardown()
    return 130 if history.interrupted else 0


if __name__ == "__main__":
    sys.exit(record(main)())  # under torchrun a failing rank's traceback appears in the launcher's summary
