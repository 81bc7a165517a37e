"""Optimizers and learning-rate schedulers, as ``torch.optim``: they update ``param.data`` in place from
``param.grad`` step by step as PyTorch's do, per parameter group (``weight_decay`` as PyTorch: L2 for SGD, Adam,
RMSprop and Adagrad, decoupled for AdamW); ``optim.lr_scheduler`` sets each group's ``lr`` at each ``step()``.
"""

from . import lr_scheduler
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR  # also at this level, as before
from .optimizer import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "CosineAnnealingLR", "LRScheduler", "Optimizer", "RMSprop", "StepLR",
           "lr_scheduler"]
