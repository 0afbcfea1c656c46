"""Two-level bootstrap over training seeds and test rows: where networks differ from seed to seed, its interval
covers the seed-mean R^2 and an interval over test rows alone does not."""
import numpy as np

from distill import intervals

N, SEEDS, REPS = 1000, 5, 150


def seed_runs(rng, y):
    """Five training seeds whose error sd varies widely (uniform in 0.3-0.9), as networks do between seeds."""
    sds = rng.uniform(0.3, 0.9, SEEDS)
    return [y + s * rng.normal(size=N) for s in sds]


TRUTH = 1 - (0.9 ** 3 - 0.3 ** 3) / (3 * 0.6)  # 1 - E[sd^2] for sd ~ U(0.3, 0.9)


def test_two_levels_cover_where_rows_alone_do_not():
    rng = np.random.default_rng(0)
    two, rows_only = 0, 0
    for _ in range(REPS):
        y = rng.normal(size=N)
        runs = seed_runs(rng, y)
        ci, sd = intervals.over_seeds(y, runs, n_boot=400)
        two += ci.lo <= TRUTH <= ci.hi
        # rows alone: the seed mean's interval from the test rows, seeds held fixed
        each = np.stack([intervals._r2_each(y, p, intervals.resamples(N, 400)) for p in runs]).mean(axis=0)
        lo, hi = np.percentile(each, [2.5, 97.5])
        rows_only += lo <= TRUTH <= hi
        assert sd > 0
    print(f"coverage: seeds and rows {two / REPS:.0%}, rows only {rows_only / REPS:.0%}")
    assert two / REPS >= 0.8 and rows_only / REPS <= 0.5


def test_paired_arms_and_mismatched_seeds():
    rng = np.random.default_rng(1)
    y = rng.normal(size=N)
    a = [y + 0.5 * rng.normal(size=N) for _ in range(3)]
    b = [p + 0.3 * rng.normal(size=N) for p in a]  # each b seed is its a seed made worse
    ci, _ = intervals.over_seeds(y, a, b)
    assert ci.lo > 0
    try:
        intervals.over_seeds(y, a, b[:2])
    except ValueError as e:
        assert "paired by seed" in str(e)
    else:
        raise AssertionError("unpaired seeds accepted")
