"""The optimizer's settings shared by pretraining and fine-tuning, as in BERT.

AdamW with weight decay on the weight matrices only (not on biases nor LayerNorm parameters), and
a learning rate that rises linearly over the warm-up steps and then falls linearly to 0.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["parameter_groups", "warmup_linear_decay"]


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay the weight matrices, not the biases nor the LayerNorm parameters."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad:
                continue
            exempt = name.endswith("bias") or isinstance(module, nn.LayerNorm)
            (no_decay if exempt else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_linear_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Learning-rate factor rising linearly from 0 to 1 over warm-up, then falling linearly to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
