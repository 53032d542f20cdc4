"""Policies: plain ``nn.Module``s that map observations to a ``torch.distributions`` object.

Adapted parameters are ordinary dicts used through ``torch.func.functional_call``, so the module
itself is never mutated by the inner step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal

Params = dict[str, torch.Tensor]

NONLINEARITIES = {"relu": nn.ReLU, "tanh": nn.Tanh}


class GaussianMLPPolicy(nn.Module):
    """A diagonal Gaussian whose mean is an MLP of the observation and whose log-std is state-independent."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int] = (100, 100),
        nonlinearity: str = "relu",
        init_std: float = 1.0,
        min_std: float = 1e-6,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; choose one of {sorted(NONLINEARITIES)}")
        layers: list[nn.Module] = []
        sizes = [observation_dim, *hidden_sizes]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), NONLINEARITIES[nonlinearity]()]
        layers.append(nn.Linear(sizes[-1], action_dim))
        self.mean = nn.Sequential(*layers)
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std)))
        self.min_log_std = math.log(min_std)
        for layer in self.mean:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight, generator=generator)
                nn.init.zeros_(layer.bias)

    def forward(self, observations: torch.Tensor) -> Independent:
        # validate_args=False keeps the construction free of data-dependent checks, so it works under vmap.
        std = self.log_std.clamp(min=self.min_log_std).exp().expand(observations.shape[:-1] + self.log_std.shape)
        return Independent(Normal(self.mean(observations), std, validate_args=False), 1, validate_args=False)


def parameters_of(module: nn.Module) -> Params:
    """The module's parameters as the dict that ``functional_call`` and the inner step work with."""
    return dict(module.named_parameters())


def detached(params: Params) -> Params:
    return {name: value.detach() for name, value in params.items()}
