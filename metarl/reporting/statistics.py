"""Summary statistics of per-task returns: mean, standard error and a Student-t confidence interval.

The t quantile is computed here rather than taken from scipy (not a dependency): the t CDF is
1 − ½·I_x(ν/2, ½) with x = ν/(ν + t²) for t ≥ 0, where I is the regularised incomplete beta function,
evaluated by its continued fraction (modified Lentz, as in Numerical Recipes §6.4); the quantile is
then found by bisection to ~1e-12. Tests check it against published t tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np


def _betacf(a: float, b: float, x: float, max_iter: int = 500, eps: float = 1e-15) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, max_iter + 1):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@cache  # summaries ask for the same few (p, df) again and again
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom, 0 < p < 1."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Summary:
    """Mean over tasks with its standard error and two-sided confidence interval."""

    mean: float
    std_error: float
    ci_low: float
    ci_high: float
    num_tasks: int
    confidence: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean ± t_{(1+c)/2, n−1} · s/√n, with s the sample standard deviation (ddof=1).

    Tasks are the independent units, so ``values`` holds one number per task. With a single task
    the standard error and interval are undefined and come back as NaN.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"summarize needs a non-empty 1-D sequence, got shape {array.shape}")
    mean = float(array.mean())
    n = int(array.size)
    if n < 2:
        return Summary(mean, math.nan, math.nan, math.nan, n, confidence)
    std_error = float(array.std(ddof=1) / math.sqrt(n))
    half_width = t_quantile(0.5 + confidence / 2.0, n - 1) * std_error
    return Summary(mean, std_error, mean - half_width, mean + half_width, n, confidence)
