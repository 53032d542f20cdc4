"""Policies: plain ``nn.Module``s that map observations to a ``torch.distributions`` object.

Adapted parameters are ordinary dicts used through ``torch.func.functional_call``, so the module
itself is never mutated by the inner step.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal

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
        self.nonlinearity = nonlinearity
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; choose one of {sorted(NONLINEARITIES)}")
        layers: list[nn.Module] = []
        sizes = [observation_dim, *hidden_sizes]
        for fan_in, fan_out in itertools.pairwise(sizes):
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
        """The action distribution for observations [..., O].

        Parameters may carry a leading task axis K (as an adapted meta-batch does); observations are
        then [K, ..., O] and task k's observations meet task k's parameters, in one batched matmul
        per layer rather than one forward per task.
        """
        hidden = observations
        for layer in self.mean:
            hidden = batched_linear(hidden, layer.weight, layer.bias) if isinstance(layer, nn.Linear) else layer(hidden)
        log_std = self.log_std.clamp(min=self.min_log_std)
        if log_std.dim() > 1:  # [K, A] → [K, 1, ..., 1, A]
            log_std = log_std.view(log_std.shape[0], *[1] * (observations.dim() - 2), log_std.shape[-1])
        std = log_std.exp().expand_as(hidden)
        return diagonal_gaussian(hidden, std)


def diagonal_gaussian(loc: torch.Tensor, scale: torch.Tensor) -> Independent:
    # validate_args=False keeps the construction free of data-dependent checks (cheap, and vmap-safe).
    return Independent(Normal(loc, scale, validate_args=False), 1, validate_args=False)


def gaussian_parameters(distribution: Distribution) -> tuple[torch.Tensor, torch.Tensor]:
    """(loc, scale) of a diagonal Gaussian, the outputs a Gauss-Newton curvature product differentiates."""
    assert isinstance(distribution, Independent) and isinstance(distribution.base_dist, Normal), distribution
    return distribution.base_dist.loc, distribution.base_dist.scale


def batched_linear(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.linear``, or with weights [K, out, in] and inputs [K, ..., in] one ``baddbmm`` over the K tasks."""
    if weight.dim() == 2:
        return F.linear(inputs, weight, bias)
    flat = inputs.reshape(inputs.shape[0], -1, inputs.shape[-1])
    out = torch.baddbmm(bias.unsqueeze(1), flat, weight.transpose(1, 2))
    return out.view(*inputs.shape[:-1], weight.shape[1])


def parameters_of(module: nn.Module) -> Params:
    """The module's parameters as the dict that ``functional_call`` and the inner step work with."""
    return dict(module.named_parameters())


def detached(params: Params) -> Params:
    return {name: value.detach() for name, value in params.items()}


def for_tasks(params: Params, num_tasks: int) -> Params:
    """θ repeated along a new task axis as a view: task i's gradient flows back to the shared θ."""
    return {name: value.expand(num_tasks, *value.shape) for name, value in params.items()}
