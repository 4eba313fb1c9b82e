"""Claim: augmenting on the device (cnnlib.augment) costs little next to training, and far less than a
torchvision ``transforms.v2`` pipeline in a DataLoader. Evidence: benchmarks/results/augment-<device>.json.

The augmentation is the one chapter 15 trains with: a horizontal flip (p = 0.5), then a 28x28 crop of the
image padded by 2 pixels (a shift by up to 2 pixels); then the resize to 96x96 that ResNet-18 is trained at.

1. Augmentation alone, per 60,000 images (one Fashion-MNIST epoch), batches of 256:
   - ``device``: ``flip_and_crop`` on float batches already on the device;
   - ``loader_plain`` / ``loader_augmented``: a full pass of cnnlib's training loader (uint8 -> float,
     augmentation, resize) without and with it;
   - ``torchvision``: a full pass of a DataLoader over the same uint8 tensors with
     ``v2.RandomHorizontalFlip``, ``v2.RandomCrop(padding=2)``, ``v2.Resize(96)``, ``v2.ToDtype`` in
     ``--workers`` worker processes (per image, as torchvision transforms work).
2. One ResNet-18 training epoch (``cnnlib.train``, the chapter's settings) on the first ``--subset`` training
   examples, with each of the three loaders: no augmentation, device augmentation, torchvision pipeline.
   The training pass is timed, data loading included (``History.train_seconds``), after one untimed
   warm-up epoch.
3. An ESTIMATE for the GPU, where this script may not run: the number of kernels the augmentation launches
   per batch (counted with torch.profiler), times ``--us-per-kernel`` microseconds each, per epoch, against
   the stored H200 ResNet-18 epoch (benchmarks/results/nvidia-h200.json). Run it with ``--device cuda`` on a
   GPU to measure instead.

Examples:
    python benchmarks/augment_cost.py --device cpu --subset 2048
    python benchmarks/augment_cost.py --device cuda --subset 60000
"""
import argparse
import json
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from train_speed import RESULTS, device_name

import cnnlib
from cnnlib.augment import flip_and_crop
from cnnlib.models import BOOK_MODELS

SETTINGS = BOOK_MODELS["resnet18"]  # lr 0.05, batch 256, resize 96
PADDING = 2


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn, device, repeats):
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class TorchvisionImages(Dataset):
    """uint8 (N, 1, 28, 28) images and labels, each image passed through a ``transforms.v2`` pipeline."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def torchvision_loader(images, labels, batch_size, workers):
    transform = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomCrop(28, padding=PADDING),
                            v2.Resize(SETTINGS["resize"], antialias=True), v2.ToDtype(torch.float32, scale=True)])
    return DataLoader(TorchvisionImages(images, labels, transform), batch_size, shuffle=True,
                      num_workers=workers, persistent_workers=workers > 0)


def full_pass(loader, device):
    def run():
        for X, _ in loader:
            X = X.to(device, non_blocking=True)
    return run


def augmentation_alone(images, labels, device, workers, repeats):
    """Seconds per 60,000 images for each way of producing augmented 96x96 batches."""
    aug = flip_and_crop(28, padding=PADDING)
    batch_size = SETTINGS["batch_size"]
    on_device = images.to(device)
    batches = [on_device[i:i + batch_size].float().div(255) for i in range(0, len(on_device), batch_size)]
    scale = 60_000 / len(images)
    plain = cnnlib.DeviceLoader(on_device, labels.to(device), batch_size, shuffle=True, resize=SETTINGS["resize"])
    augmented = cnnlib.DeviceLoader(on_device, labels.to(device), batch_size, shuffle=True,
                                    resize=SETTINGS["resize"], augment=aug)
    result = dict(
        device_augment_s=seconds(lambda: [aug(X) for X in batches], device, repeats) * scale,
        loader_plain_s=seconds(full_pass(plain, device), device, repeats) * scale,
        loader_augmented_s=seconds(full_pass(augmented, device), device, repeats) * scale,
        torchvision_loader_s=seconds(full_pass(torchvision_loader(images, labels, batch_size, workers), device),
                                     device, max(1, repeats // 2)) * scale,
    )
    result["loader_augment_overhead_s"] = result["loader_augmented_s"] - result["loader_plain_s"]
    return result


def kernels_per_batch(device):
    """Number of kernels (CPU: aten ops that do work) one ``flip_and_crop`` call on a batch launches."""
    aug, X = flip_and_crop(28, padding=PADDING), torch.rand(SETTINGS["batch_size"], 1, 28, 28, device=device)
    activities = [ProfilerActivity.CUDA] if device.type == "cuda" else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        aug(X)
    if device.type == "cuda":
        return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    # On the CPU count only the leaf ops (those that call no other op): each would be one kernel on a GPU.
    events = prof.events()
    parents = {e.cpu_parent.id for e in events if e.cpu_parent is not None}
    return sum(1 for e in events if e.id not in parents and e.name.startswith("aten::"))


def training_epochs(images, labels, test_images, test_labels, device, workers, epochs):
    """Training-pass seconds of ``epochs`` ResNet-18 epochs with each loader (median over epochs)."""
    batch_size, resize = SETTINGS["batch_size"], SETTINGS["resize"]
    test_iter = cnnlib.DeviceLoader(test_images.to(device), test_labels.to(device), batch_size, shuffle=False,
                                    resize=resize)
    loaders = {
        "none": cnnlib.DeviceLoader(images.to(device), labels.to(device), batch_size, shuffle=True, resize=resize),
        "device": cnnlib.DeviceLoader(images.to(device), labels.to(device), batch_size, shuffle=True,
                                      resize=resize, augment=flip_and_crop(28, padding=PADDING)),
        "torchvision": torchvision_loader(images, labels, batch_size, workers),
    }
    warm_up = cnnlib.DeviceLoader(images[:256].to(device), labels[:256].to(device), batch_size, shuffle=True,
                                  resize=resize)  # first epochs in a process are slower (allocator, caches)
    cnnlib.train(SETTINGS["build"](), warm_up, test_iter, 1, SETTINGS["lr"], device, plot=False, progress=False)
    out = {}
    for name, train_iter in loaders.items():
        history = cnnlib.train(SETTINGS["build"](), train_iter, test_iter, epochs, SETTINGS["lr"], device,
                               plot=False, progress=False)
        out[f"{name}_epoch_seconds"] = history.train_seconds
        out[f"{name}_epoch_s"] = statistics.median(history.train_seconds)
    out["device_vs_none"] = out["device_epoch_s"] / out["none_epoch_s"] - 1
    out["torchvision_vs_none"] = out["torchvision_epoch_s"] / out["none_epoch_s"] - 1
    return out


def gpu_estimate(kernels, us_per_kernel):
    """Kernels per batch x microseconds per kernel x 235 batches, against the stored H200 ResNet-18 epoch."""
    stored = json.loads((RESULTS / "nvidia-h200.json").read_text())
    epoch_s = next(r["cnnlib_epoch_s"] for r in stored if r["model"] == "resnet18" and not r.get("subset"))
    batches = -(-60_000 // SETTINGS["batch_size"])
    augment_s = kernels * us_per_kernel * 1e-6 * batches
    return dict(kernels_per_batch=kernels, us_per_kernel=us_per_kernel, batches_per_epoch=batches,
                estimated_augment_s_per_epoch=augment_s, h200_resnet18_epoch_s=epoch_s,
                estimated_fraction=augment_s / epoch_s)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda ... (default: a GPU if there is one)")
    parser.add_argument("--subset", type=int, default=2048, help="training examples for the ResNet-18 epochs")
    parser.add_argument("--epochs", type=int, default=2, help="ResNet-18 epochs per loader (median reported)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the torchvision pipeline")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of the augmentation-alone part")
    parser.add_argument("--us-per-kernel", type=float, default=10.0,
                        help="assumed GPU cost of one small kernel, launch included (for the estimate)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device) if args.device else cnnlib.try_gpu()
    images, labels = cnnlib.read_fashion_mnist(train=True)
    test_images, test_labels = cnnlib.read_fashion_mnist(train=False)
    kernels = kernels_per_batch(device)
    row = dict(device=str(device), device_name=device_name(device), torch=torch.__version__,
               threads=torch.get_num_threads(), batch_size=SETTINGS["batch_size"], resize=SETTINGS["resize"],
               augmentation=f"horizontal flip p=0.5, 28x28 crop with padding {PADDING}", workers=args.workers,
               subset=args.subset, epochs=args.epochs,
               per_60000_images=augmentation_alone(images, labels, device, args.workers, args.repeats),
               resnet18_epoch=training_epochs(images[:args.subset], labels[:args.subset], test_images[:256],
                                              test_labels[:256], device, args.workers, args.epochs))
    if device.type == "cuda":
        row["kernels_per_batch"] = kernels
    else:
        row["gpu_estimate"] = gpu_estimate(kernels, args.us_per_kernel)
    print(json.dumps(row, indent=1))
    if not args.no_save:
        path = RESULTS / f"augment-{row['device_name']}.json"
        path.write_text(json.dumps(row, indent=1) + "\n")
        print(f"wrote {path}")
    return row


if __name__ == "__main__":
    main()
