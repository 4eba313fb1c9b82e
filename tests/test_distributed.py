"""Data parallelism: the sharding rule, two gloo processes under torchrun equal one process, and faults end
every process quickly.

The torchrun tests use the loopback interface only and a port the OS picks at run time
(``--rdzv-endpoint=127.0.0.1:0``, what ``--standalone`` does on ``localhost``).
"""
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import torch

import cnnlib
from cnnlib import distributed
from cnnlib import run as cli
from cnnlib.fashion_mnist import FILES, dataset_files

ROOT = Path(__file__).resolve().parents[1]


def torchrun_command(*args, nproc=2):
    """``torchrun`` (the module behind it, from this interpreter) for one machine, on 127.0.0.1 only."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc-per-node={nproc}",
            "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", f"--rdzv-id={uuid.uuid4()}",
            "--local-addr=127.0.0.1", *args]


def child_env(**extra):
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **extra)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def descendants(pid):
    """Every live process below ``pid``, found through /proc's parent links."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Launched:
    """A torchrun started in its own session; whatever it left running is killed by id at the end."""

    def __init__(self, command, env):
        self.proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.seen = set()

    def watch(self):
        self.seen.update(descendants(self.proc.pid))

    def cleanup(self):
        for pid in [self.proc.pid, *self.seen]:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait()


# --- the sharding rule, in one process --------------------------------------------------------------------


def test_shard_covers_a_global_batch_exactly_once_with_sizes_within_one():
    for n in (1, 5, 64, 65):
        for world in (1, 2, 3, 4):
            parts = [distributed.shard(100, 100 + n, r, world) for r in range(world)]
            assert parts[0][0] == 100 and parts[-1][1] == 100 + n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:])), parts
            sizes = [stop - start for start, stop in parts]
            assert max(sizes) - min(sizes) <= 1, sizes


def rank_loaders(n, batch, world, shuffle):
    images = torch.arange(n, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(n, 1, 1, 1)
    labels = torch.arange(n)  # the label is the example's index
    return [cnnlib.DeviceLoader(images, labels, batch, shuffle=shuffle, rank=r, world_size=world)
            for r in range(world)]


def epoch_indices(loader, seed):
    torch.manual_seed(seed)  # every rank draws rank 0's permutation (a broadcast under torchrun)
    return [y for _, y in loader]


@pytest.mark.parametrize("n, batch, world", [(1000, 64, 2), (1000, 60, 3), (1001, 64, 4)])
def test_every_training_example_is_used_once_per_epoch_and_step_i_is_one_global_batch(n, batch, world):
    loaders = rank_loaders(n, batch, world, shuffle=True)
    per_rank = [epoch_indices(loader, seed=7) for loader in loaders]
    single = epoch_indices(rank_loaders(n, batch, 1, shuffle=True)[0], seed=7)
    assert len({len(steps) for steps in per_rank}) == 1, "every rank must take the same number of steps"
    assert len(per_rank[0]) == len(single) == len(loaders[0]) == -(-n // batch), n % batch
    for i, batch_one_process in enumerate(single):
        union = torch.cat([steps[i] for steps in per_rank])
        assert torch.equal(union, batch_one_process), f"step {i}: the ranks' slices are not one process's batch"
    used = torch.cat([torch.cat(steps) for steps in per_rank]).sort().values
    assert torch.equal(used, torch.arange(n)), "some example is missing or used twice in the epoch"


def test_a_training_batch_smaller_than_the_world_is_skipped_by_every_rank_and_a_test_batch_is_kept():
    n, batch, world = 130, 64, 4  # the last global batch holds 2 examples for 4 ranks
    train = [epoch_indices(loader, seed=0) for loader in rank_loaders(n, batch, world, shuffle=True)]
    assert [len(steps) for steps in train] == [2] * world
    assert sum(len(y) for steps in train for y in steps) == 128
    test = [[y for _, y in loader] for loader in rank_loaders(n, batch, world, shuffle=False)]
    assert torch.equal(torch.cat([y for r in range(world) for y in test[r][2:]]), torch.tensor([128, 129]))
    assert sorted(torch.cat([torch.cat(steps) for steps in test]).tolist()) == list(range(n))


def test_an_examples_augmentation_does_not_depend_on_which_process_holds_it():
    """The ranks' augmented slices at step i, put together, are the augmented batch of one process."""
    n, batch, world = 200, 64, 2  # the last global batch holds 8 examples, 4 per rank
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    augment = cnnlib.augment.Compose([cnnlib.augment.flip_and_crop(8, padding=2), cnnlib.augment.random_erasing])

    def epoch(rank, world_size):
        torch.manual_seed(5)  # every rank starts from the same seed; rank 0's draws are broadcast under torchrun
        loader = cnnlib.DeviceLoader(images, torch.arange(n), batch, shuffle=True, augment=augment, rank=rank,
                                     world_size=world_size)
        return [X for X, _ in loader]

    one, per_rank = epoch(0, 1), [epoch(r, world) for r in range(world)]
    for i, X in enumerate(one):
        assert torch.equal(torch.cat([steps[i] for steps in per_rank]), X), f"step {i}: augmented differently"


def test_loss_weight_makes_unequal_slices_average_to_the_global_mean():
    torch.manual_seed(0)
    w, X, y = torch.randn(3, 5, requires_grad=True), torch.randn(7, 5), torch.randint(0, 3, (7,))
    loss = torch.nn.CrossEntropyLoss()
    whole = torch.autograd.grad(loss(X @ w.T, y), w)[0]
    world, grads = 2, []
    for r in range(world):
        start, stop = distributed.shard(0, 7, r, world)
        part = loss(X[start:stop] @ w.T, y[start:stop]) * distributed.loss_weight(stop - start, 7, world)
        grads.append(torch.autograd.grad(part, w)[0])
    torch.testing.assert_close(sum(grads) / world, whole)  # DDP's average over ranks


def test_bad_rank_or_world_size_is_refused():
    images, labels = torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="rank must be an int in 0..world_size-1"):
        cnnlib.DeviceLoader(images, labels, 2, shuffle=True, rank=2, world_size=2)


def test_without_torchrun_the_world_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    net = torch.nn.Linear(2, 2)
    assert distributed.wrap(net, "cpu") is net
    assert distributed.setup("cpu") == torch.device("cpu") and not torch.distributed.is_initialized()


# --- real processes ---------------------------------------------------------------------------------------

ARGS = ["lenet", "--epochs", "1", "--subset", "245", "--batch-size", "48", "--device", "cpu", "--seed", "3"]


@pytest.mark.needs_data
def test_two_gloo_processes_train_the_same_weights_as_one(tmp_path, monkeypatch, capsys):
    """245 examples in global batches of 48: the last holds 5, split 2/3, so the loss weighting matters."""
    monkeypatch.setenv("CNNLIB_SMOKE", "0")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    run = Launched(torchrun_command("-m", "cnnlib.run", *ARGS, "--save", str(tmp_path / "ddp.pt"),
                                    "--json", str(tmp_path / "ddp.json")), child_env(CNNLIB_SMOKE="0"))
    try:
        assert cli.main([*ARGS, "--save", str(tmp_path / "one.pt"), "--json", str(tmp_path / "one.json")]) == 0
        out, _ = run.proc.communicate(timeout=120)
    finally:
        run.cleanup()
    assert run.proc.returncode == 0, out
    assert out.count("examples/sec on cpu") == 1, f"only rank 0 prints the closing line:\n{out}"
    one, ddp = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "ddp.pt")
    assert one.keys() == ddp.keys()
    largest = max((one[k] - ddp[k]).abs().max().item() for k in one)
    print(f"largest weight difference, 2 processes vs 1: {largest:.3g}")
    assert largest < 1e-5, f"2 processes moved the weights {largest} away from one process"
    h1, h2 = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "ddp"))
    assert (h2["world_size"], h1["world_size"]) == (2, 1)
    assert h2["train_examples"] == h1["train_examples"] == [245]
    assert h2["test_acc"] == h1["test_acc"], "the sharded, all-reduced test accuracy must equal one process's"
    assert abs(h2["train_loss"][0] - h1["train_loss"][0]) < 1e-5


class Masks(torch.nn.Module):
    """Dropout on 4x4 inputs, then a linear layer; remembers which units each forward pass dropped."""

    def __init__(self):
        super().__init__()
        self.dropout, self.linear, self.dropped = torch.nn.Dropout(0.5), torch.nn.Linear(16, 2), []

    def forward(self, X):
        X = self.dropout(X.flatten(1))
        self.dropped.append(X == 0)
        return self.linear(X)


def train_augmented_lenet_and_dropout(folder):
    """Run in every process: one epoch of LeNet on 245 augmented examples (global batches of 48), then one of
    :class:`Masks`; rank 0 saves LeNet's weights to ``folder/lenet.pt``, every rank its masks to ``masks-R.pt``."""
    device = distributed.setup("cpu")
    augment = cnnlib.augment.Compose([cnnlib.augment.flip_and_crop(28, padding=2), cnnlib.augment.random_erasing])
    train_iter, test_iter = cnnlib.load_fashion_mnist(48, device=device, subset=245, augment=augment)
    net = cnnlib.models.BOOK_MODELS["lenet"]["build"]()
    cnnlib.train(net, train_iter, test_iter, 1, 0.5, device, seed=3, plot=False, progress=False)
    if distributed.is_main():
        torch.save(net.state_dict(), folder / "lenet.pt")
    images, labels = torch.full((64, 1, 4, 4), 255, dtype=torch.uint8), torch.arange(64) % 2
    masks = Masks()
    cnnlib.train(masks, cnnlib.DeviceLoader(images, labels, 32, shuffle=True),
                 cnnlib.DeviceLoader(images, labels, 32, shuffle=False), 1, 0.1, device, seed=0, plot=False,
                 progress=False)
    torch.save(torch.stack(masks.dropped[:2]), folder / f"masks-{distributed.rank()}.pt")
    distributed.teardown()


@pytest.fixture(scope="module")
def augmented_runs(tmp_path_factory):
    """The folders of :func:`train_augmented_lenet_and_dropout` run by 2 gloo processes and by one."""
    one, ddp = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("ddp")
    script = ddp / "augmented.py"
    script.write_text("import sys\nfrom pathlib import Path\n"
                      "from tests.test_distributed import train_augmented_lenet_and_dropout\n"
                      "train_augmented_lenet_and_dropout(Path(sys.argv[1]))\n")
    run = Launched(torchrun_command(str(script), str(ddp)), child_env(CNNLIB_SMOKE="0"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CNNLIB_SMOKE", "0")
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            monkeypatch.delenv(name, raising=False)
        try:
            train_augmented_lenet_and_dropout(one)
            out, _ = run.proc.communicate(timeout=120)
        finally:
            run.cleanup()
    assert run.proc.returncode == 0, out
    return one, ddp


@pytest.mark.needs_data
def test_two_gloo_processes_train_the_same_weights_as_one_with_augmentation(augmented_runs):
    one, ddp = (torch.load(folder / "lenet.pt") for folder in augmented_runs)
    largest = max((one[k] - ddp[k]).abs().max().item() for k in one)
    print(f"largest weight difference, 2 processes vs 1, augmented: {largest:.3g}")
    assert largest < 1e-5, f"2 processes moved the weights {largest} away from one process"


@pytest.mark.needs_data
def test_each_process_draws_its_own_dropout_masks(augmented_runs):
    """Same seed on every rank, but rank 1 must not repeat rank 0's masks."""
    _, ddp = augmented_runs
    masks = [torch.load(ddp / f"masks-{rank}.pt") for rank in range(2)]
    assert masks[0].shape == masks[1].shape == (2, 16, 16)
    assert not torch.equal(masks[0], masks[1]), "both processes dropped exactly the same units"


def truncated_copy(folder):
    """A Fashion-MNIST folder whose training images end half-way."""
    folder.mkdir()
    for key, path in dataset_files().items():
        target = folder / f"{FILES[key]}.gz"
        if key == "train_images":
            target.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:100_000]))
        else:
            target.symlink_to(path)
    return folder


@pytest.mark.needs_data
def test_one_failing_rank_ends_every_rank_quickly_with_its_message(tmp_path):
    """Rank 1 alone sees a damaged data file; rank 0 then waits in DDP's first collective until torchrun ends it."""
    script = tmp_path / "rank1_bad_data.py"
    script.write_text(textwrap.dedent("""\
        import os, sys
        if os.environ["RANK"] == "1":
            os.environ["CNNLIB_DATA"] = sys.argv.pop(1)
        else:
            sys.argv.pop(1)
        from cnnlib import run
        sys.exit(run.main(sys.argv[1:]))
        """))
    run = Launched(torchrun_command(str(script), str(truncated_copy(tmp_path / "bad")), *ARGS),
                   child_env(CNNLIB_SMOKE="0"))
    failed_at, lines = None, []
    try:
        for line in run.proc.stdout:
            run.watch()
            lines.append(line)
            if failed_at is None and "rank 1:" in line and "truncated or corrupt" in line:
                failed_at = time.perf_counter()
        run.proc.wait(timeout=60)
        exited_at = time.perf_counter()
    finally:
        run.cleanup()
    out = "".join(lines)
    assert failed_at is not None, f"rank 1's message is missing:\n{out}"
    assert run.proc.returncode != 0, out
    print(f"time from rank 1's error to the launcher's exit: {exited_at - failed_at:.2f} s")
    assert exited_at - failed_at < 15, out
    assert not [pid for pid in run.seen if alive(pid)], "a worker outlived the launcher"


@pytest.mark.needs_data
def test_ctrl_c_on_the_launcher_ends_every_process(tmp_path):
    run = Launched(torchrun_command("-m", "cnnlib.run", "lenet", "--epochs", "50", "--device", "cpu"),
                   child_env(CNNLIB_SMOKE="0"))
    try:
        deadline = time.monotonic() + 60
        while len([p for p in descendants(run.proc.pid) if alive(p)]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        run.watch()
        workers = [pid for pid in run.seen if alive(pid)]
        assert len(workers) >= 2, "torchrun did not start two workers"
        os.kill(run.proc.pid, signal.SIGINT)
        run.proc.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [pid for pid in workers if alive(pid)]
    finally:
        run.cleanup()
    assert run.proc.returncode != 0
    assert not survivors, f"processes {survivors} survived Ctrl-C on the launcher"
