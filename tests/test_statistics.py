import math

import numpy as np
import pytest

from metarl.reporting.statistics import regularized_incomplete_beta, summarize, t_cdf, t_quantile

# Two-sided 95% critical values from published t tables.
T_TABLE_975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622, 19: 2.0930, 39: 2.0227, 120: 1.9799}


@pytest.mark.parametrize("df, expected", sorted(T_TABLE_975.items()))
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_is_symmetric_and_inverts_the_cdf():
    for df in (1, 3, 39):
        for p in (0.6, 0.9, 0.995):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-10)
            assert t_quantile(1 - p, df) == pytest.approx(-t_quantile(p, df), abs=1e-10)
    assert t_quantile(0.975, 10**6) == pytest.approx(1.959964, abs=1e-5)  # the normal limit


def test_incomplete_beta_closed_forms():
    assert regularized_incomplete_beta(1.0, 1.0, 0.3) == pytest.approx(0.3)  # uniform CDF
    assert regularized_incomplete_beta(2.0, 1.0, 0.3) == pytest.approx(0.09)  # x²


def test_summary_by_hand():
    summary = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sample sd sqrt(2.5), standard error sqrt(2.5)/sqrt(5) = sqrt(0.5), t(0.975, 4) = 2.776445
    assert summary.mean == 3.0
    assert summary.std_error == pytest.approx(math.sqrt(0.5))
    assert summary.ci_low == pytest.approx(3.0 - 2.776445 * math.sqrt(0.5), abs=1e-5)
    assert summary.ci_high == pytest.approx(3.0 + 2.776445 * math.sqrt(0.5), abs=1e-5)
    assert summary.num_tasks == 5


def test_summary_coverage_is_about_95_percent():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        summary = summarize(rng.normal(1.0, 2.0, size=8))
        hits += summary.ci_low <= 1.0 <= summary.ci_high
    assert 0.935 < hits / 2000 < 0.965


def test_summary_of_one_task_has_no_interval():
    summary = summarize([4.0])
    assert summary.mean == 4.0 and math.isnan(summary.std_error) and math.isnan(summary.ci_low)
    with pytest.raises(ValueError):
        summarize([])
