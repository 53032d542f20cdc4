"""Sampler backends behind one protocol (``metarl.samplers.base.Sampler``)."""

from metarl.samplers.base import Sampler, SeedKey
from metarl.samplers.vectorized import VectorizedSampler

__all__ = ["Sampler", "SeedKey", "VectorizedSampler"]
