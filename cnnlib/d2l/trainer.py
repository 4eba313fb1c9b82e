"""d2l-en's ``Trainer``: ``Trainer(max_epochs, num_gpus).fit(model, data)``, with cnnlib's speed.

What d2l's loop does and this one keeps: the model's own ``training_step``, ``validation_step`` and
``configure_optimizers``; no seeding and no re-initialisation; validation in eval mode under ``torch.no_grad()``.
What is faster: the batches already sit on the device (:class:`cnnlib.DeviceLoader`), the forward pass runs in
bf16 autocast on GPUs of compute capability 8.0 and above (fp16 with a GradScaler below, such as the T4), the
network and the batches use the channels_last layout, and the progress board reads its values back once per
epoch, not once per batch.
"""
import torch
from torch import nn

import cnnlib
from cnnlib.training import PRECISIONS, choose_precision

from .hyperparameters import HyperParameters


def _has_lazy_parameters(model):
    return any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())


class Trainer(HyperParameters):
    """Fit a ``d2l.Module`` to a ``d2l.DataModule`` for ``max_epochs`` epochs on the first of ``num_gpus`` GPUs (the
    CPU when there is none); ``gradient_clip_val > 0`` clips the gradient's norm to that value."""

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive int, got {max_epochs!r}")
        self.save_hyperparameters()
        self.gpus = [torch.device(f"cuda:{i}") for i in range(min(num_gpus, torch.cuda.device_count()))]
        self.device = self.gpus[0] if self.gpus else torch.device("cpu")

    def prepare_data(self, data):
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = len(self.val_dataloader) if self.val_dataloader is not None else 0

    def prepare_batch(self, batch):
        """Move every tensor of ``batch`` to the trainer's device; images (B, C, H, W) to channels_last."""
        return [a.to(self.device, non_blocking=True, memory_format=torch.channels_last) if a.dim() == 4
                else a.to(self.device, non_blocking=True) for a in batch]

    def prepare_model(self, model):
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        model.to(self.device)
        if _has_lazy_parameters(model):  # give lazy layers their shapes now, so the layout can change
            X = self.prepare_batch(next(iter(self.train_dataloader)))[:-1]
            was_training = model.training
            model.eval()  # no batch statistics are updated
            with torch.no_grad():
                model(*X)
            model.train(was_training)
        model.to(memory_format=torch.channels_last)
        self.model = model

    def fit(self, model, data):
        """Train ``model`` on ``data.train_dataloader()`` and validate on ``data.val_dataloader()`` every epoch."""
        if cnnlib.smoke_mode() and self.max_epochs > 1:
            print(f"[cnnlib] smoke run (CNNLIB_SMOKE=1): 1 epoch instead of {self.max_epochs}")
            self.max_epochs = 1
        self.prepare_data(data)
        self.prepare_model(model)
        self.optim = model.configure_optimizers()
        self._dtype = PRECISIONS[choose_precision(self.device)]  # bf16 from capability 8.0, else fp16
        self.scaler = torch.amp.GradScaler(self.device.type) if self._dtype == torch.float16 else None
        self.epoch = self.train_batch_idx = self.val_batch_idx = 0
        with model.board.batched():
            for epoch in range(self.max_epochs):
                self.epoch = epoch
                self.fit_epoch()

    def fit_epoch(self):
        """One pass over the training batches, then one over the validation batches; the board is drawn at the
        end, with the epoch's only sync."""
        self.model.train()
        for batch in self.train_dataloader:
            with self._autocast():
                loss = self.model.training_step(self.prepare_batch(batch))
            self.optim.zero_grad()
            self._backward_and_step(loss)
            self.train_batch_idx += 1
        if self.val_dataloader is not None:
            self.model.eval()
            with torch.no_grad(), self._autocast():
                for batch in self.val_dataloader:
                    self.model.validation_step(self.prepare_batch(batch))
                    self.val_batch_idx += 1
        self.model.board.flush()

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self._dtype or torch.bfloat16, enabled=self._dtype is not None)

    def _backward_and_step(self, loss):
        if self.scaler is None:
            loss.backward()
            if self.gradient_clip_val > 0:
                self.clip_gradients(self.gradient_clip_val, self.model)
            self.optim.step()
            return
        self.scaler.scale(loss).backward()
        if self.gradient_clip_val > 0:
            self.scaler.unscale_(self.optim)
            self.clip_gradients(self.gradient_clip_val, self.model)
        self.scaler.step(self.optim)
        self.scaler.update()

    def clip_gradients(self, grad_clip_val, model):
        """Scale the gradients of ``model`` so that their joint norm is at most ``grad_clip_val`` (on the device,
        without reading the norm back)."""
        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip_val)

