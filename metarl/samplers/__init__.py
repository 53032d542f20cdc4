"""Sampler backends behind one protocol (``metarl.samplers.base.Sampler``)."""

from __future__ import annotations

from typing import Any

from torch import nn

from metarl.config import ConfigError, SamplerConfig
from metarl.samplers.base import Sampler, SeedKey
from metarl.samplers.vectorized import VectorizedSampler


def make_sampler(
    config: SamplerConfig, env_id: str, env_kwargs: dict[str, Any], policy: nn.Module, horizon: int
) -> Sampler:
    """The backend ``config.backend`` names; ``policy`` is a CPU template whose parameters each call supplies."""
    if config.backend == "vectorized":
        return VectorizedSampler(env_id, env_kwargs, policy, horizon)
    raise ConfigError(f"sampler.backend '{config.backend}' is not available; use 'vectorized'")


__all__ = ["Sampler", "SeedKey", "VectorizedSampler", "make_sampler"]
