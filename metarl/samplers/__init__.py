"""Sampler backends behind one protocol (``metarl.samplers.base.Sampler``)."""

from __future__ import annotations

from typing import Any

from torch import nn

from metarl.config import ConfigError, SamplerConfig
from metarl.samplers.base import Sampler, SeedKey, WorkerError
from metarl.samplers.rollout import NonFiniteEpisodeError
from metarl.samplers.vectorized import VectorizedSampler


def make_sampler(
    config: SamplerConfig, env_id: str, env_kwargs: dict[str, Any], policy: nn.Module, horizon: int
) -> Sampler:
    """The backend ``config.backend`` names; ``policy`` is a CPU template whose parameters each call supplies."""
    if config.backend == "vectorized":
        return VectorizedSampler(env_id, env_kwargs, policy, horizon)
    if config.backend == "process":
        from metarl.samplers.process import ProcessSampler

        return ProcessSampler(
            env_id, env_kwargs, policy, horizon, config.num_workers, worker_timeout_s=config.worker_timeout_s
        )
    if config.backend == "ray":
        from metarl.samplers.ray_backend import RaySampler  # imports Ray only when asked for

        return RaySampler(
            env_id,
            env_kwargs,
            policy,
            horizon,
            config.num_workers,
            config.ray_address,
            worker_timeout_s=config.worker_timeout_s,
        )
    raise ConfigError(f"sampler.backend '{config.backend}' is not available; use 'vectorized', 'process' or 'ray'")


__all__ = ["NonFiniteEpisodeError", "Sampler", "SeedKey", "VectorizedSampler", "WorkerError", "make_sampler"]
