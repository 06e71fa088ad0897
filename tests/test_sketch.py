"""Quantile sketch checked against exact answers computed by sorting the raw values."""

from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallboard.fold import sketch as sk

ALPHA = 0.01
# Bin edges sit exactly ALPHA away from the estimate; allow only float rounding on top.
TOL = ALPHA * (1 + 1e-9)
QS = (0.5, 0.9, 0.99, 0.0, 1.0)
DAY = 86400.0
YEAR = 365 * DAY


def add(s: dict[int, int], bin_: int, count: int = 1) -> None:
    """One bin's count, through the fold's delta path."""
    sk.add_sketches([s], [(0, bin_, count)])


def merge_into(total: dict[int, int], other: dict[int, int], sign: int = 1) -> None:
    sk.merge_sketches([total], [other], sign)


def quantile(s: dict[int, int], q: float) -> float | None:
    return sk.quantiles(s, [q])[0]


def bin_bounds(b: int) -> tuple[float, float]:
    """The range (lo, hi] a value bin holds, from the module's definition (γ^(i−1), γ^i]."""
    return sk.GAMMA ** (b - 1), sk.GAMMA**b


def build(values: list[float]) -> dict[int, int]:
    s: dict[int, int] = {}
    for v in values:
        add(s, sk.bin_of(v))
    return s


def exact_quantile(values: list[float], q: float) -> float:
    """Nearest rank, exactly: the ceil(q·n)-th smallest (at least the 1st), q read as decimal."""
    ordered = sorted(values)
    rank = max(1, math.ceil(Fraction(str(q)) * len(ordered)))
    return ordered[rank - 1]


def assert_close(values: list[float], s: dict[int, int], q: float) -> None:
    exact = exact_quantile(values, q)
    est = quantile(s, q)
    assert est is not None
    if exact <= sk.MIN_VALUE:
        assert est == 0.0, (q, exact, est)
    else:
        assert abs(est - exact) <= TOL * exact, (q, exact, est, abs(est - exact) / exact)


# ---------------------------------------------------------------- data sets


def exponential_waits(rng: random.Random, n: int) -> list[float]:
    """Queue waits: a fifth answered at once (0 s), the rest exponential with mean 30 s."""
    return [0.0 if rng.random() < 0.2 else rng.expovariate(1 / 30) for _ in range(n)]


def lognormal_handle(rng: random.Random, n: int) -> list[float]:
    return [rng.lognormvariate(5.5, 0.8) for _ in range(n)]


def whole_seconds(rng: random.Random, n: int) -> list[float]:
    """Heavy duplicates: integer seconds, including many zeros."""
    return [float(int(rng.expovariate(1 / 20))) for _ in range(n)]


def log_uniform(rng: random.Random, n: int, lo: float = 0.01, hi: float = DAY) -> list[float]:
    a, b = math.log(lo), math.log(hi)
    return [math.exp(rng.uniform(a, b)) for _ in range(n)]


def first_response(rng: random.Random, n: int) -> list[float]:
    """Ticket first-response and resolution times: minutes to weeks, sub-threshold noise too."""
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.05:
            out.append(rng.uniform(0.0, 0.01))
        elif r < 0.5:
            out.append(rng.expovariate(1 / 3600))
        else:
            out.append(rng.lognormvariate(11, 1.5))
    return out


GENERATORS = [exponential_waits, lognormal_handle, whole_seconds, log_uniform, first_response]


# ---------------------------------------------------------------- binning


def test_constants() -> None:
    assert sk.RELATIVE_ERROR == ALPHA
    gamma = (1 + ALPHA) / (1 - ALPHA)
    assert abs(sk.GAMMA - gamma) <= 1e-15 * gamma


@pytest.mark.parametrize("value", [0, 0.0, -0.0, -5.0, 1e-9, 0.005, 0.01])
def test_zero_bin(value: float) -> None:
    assert sk.bin_of(value) == sk.ZERO_BIN
    assert sk.bin_estimate(sk.ZERO_BIN) == 0.0


def test_zero_bin_is_below_every_value_bin() -> None:
    just_above = math.nextafter(sk.MIN_VALUE, math.inf)
    assert sk.bin_of(just_above) > sk.ZERO_BIN


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_bin_of_rejects_non_finite(value: float) -> None:
    with pytest.raises(ValueError):
        sk.bin_of(value)


@given(st.floats(min_value=0.01, max_value=1e10, exclude_min=True))
def test_every_value_is_within_alpha_of_its_bin_estimate(x: float) -> None:
    b = sk.bin_of(x)
    est = sk.bin_estimate(b)
    assert abs(est - x) <= TOL * x
    lo, hi = bin_bounds(b)
    # (lo, hi] up to float rounding of log and pow
    assert lo * (1 - 1e-12) <= x <= hi * (1 + 1e-12)


def test_bin_edges_are_exactly_alpha_from_the_estimate() -> None:
    for b in (-200, -1, 0, 1, 7, 300, 900):
        lo, hi = bin_bounds(b)
        est = sk.bin_estimate(b)
        assert (hi - est) / hi == pytest.approx(ALPHA, rel=1e-9)
        assert (est - lo) / lo == pytest.approx(ALPHA, rel=1e-9)


@given(st.lists(st.floats(min_value=-1, max_value=1e9), min_size=2, max_size=50))
def test_bin_of_is_monotone(values: list[float]) -> None:
    values.sort()
    bins = [sk.bin_of(v) for v in values]
    assert bins == sorted(bins)


# ---------------------------------------------------------------- quantiles vs exact


@pytest.mark.parametrize("gen", GENERATORS, ids=lambda g: g.__name__)
@pytest.mark.parametrize("n", [1, 2, 3, 10, 99, 1000, 20000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_relative_error(gen, n: int, seed: int) -> None:
    values = gen(random.Random(seed * 1000 + n), n)
    s = build(values)
    assert sk.count(s) == n
    for q in QS:
        assert_close(values, s, q)
    # Many ranks in one walk equal each rank asked alone (the batch walk must not drift).
    assert sk.quantiles(s, QS) == [sk.quantiles(s, [q])[0] for q in QS]


def test_measured_error_never_exceeds_alpha() -> None:
    """The worst error over many data sets and a fine grid of q stays at or below 1 %."""
    worst = 0.0
    qs = [k / 200 for k in range(201)]
    for seed in range(5):
        for gen in GENERATORS:
            values = gen(random.Random(seed), 5000)
            s = build(values)
            for q, est in zip(qs, sk.quantiles(s, qs), strict=True):
                exact = exact_quantile(values, q)
                if exact > sk.MIN_VALUE:
                    worst = max(worst, abs(est - exact) / exact)
                else:
                    assert est == 0.0
    assert 0.005 < worst <= TOL  # a tight bound: errors approach it, never pass it


def test_rank_uses_nearest_rank_without_float_creep() -> None:
    # 0.07 * 100 == 7.000000000000001 in floats; the nearest rank is still 7.
    values = [float(i) for i in range(1, 101)]
    s = build(values)
    for k in range(0, 101):
        q = k / 100
        assert_close(values, s, q)
        assert quantile(s, q) == sk.bin_estimate(sk.bin_of(exact_quantile(values, q)))


def test_nearest_rank_small_cases() -> None:
    s = build([10.0, 20.0, 30.0, 40.0])
    est = sk.bin_estimate
    b = sk.bin_of
    assert quantile(s, 0.0) == est(b(10.0))
    assert quantile(s, 0.25) == est(b(10.0))
    assert quantile(s, 0.26) == est(b(20.0))
    assert quantile(s, 0.5) == est(b(20.0))
    assert quantile(s, 0.51) == est(b(30.0))
    assert quantile(s, 1.0) == est(b(40.0))


durations = st.one_of(
    st.just(0.0),
    st.floats(min_value=0.0, max_value=0.01),
    st.floats(min_value=0.01, max_value=YEAR),
    st.sampled_from([0.5, 1.0, 20.0, 20.0, 180.0]),  # duplicates at SL thresholds
)
decimal_qs = st.integers(min_value=0, max_value=1000).map(lambda k: k / 1000)


@settings(max_examples=300, deadline=None)
@given(st.lists(durations, min_size=1, max_size=300), st.lists(decimal_qs, max_size=6))
def test_quantiles_within_relative_error_hypothesis(
    values: list[float], extra: list[float]
) -> None:
    s = build(values)
    qs = [*QS, *extra]
    for q in qs:
        assert_close(values, s, q)
    assert sk.quantiles(s, qs) == [quantile(s, q) for q in qs]


def test_quantiles_keep_the_callers_order() -> None:
    values = lognormal_handle(random.Random(5), 1000)
    s = build(values)
    qs = [0.99, 0.1, 0.5, 0.5, 1.0, 0.0]
    assert sk.quantiles(s, qs) == [quantile(s, q) for q in qs]
    assert sk.quantiles(s, []) == []


# ---------------------------------------------------------------- empty and bad input


def test_empty_sketch() -> None:
    assert quantile({}, 0.5) is None
    assert sk.quantiles({}, [0.5, 0.9]) == [None, None]
    assert sk.count({}) == 0


@pytest.mark.parametrize("q", [-0.01, 1.0001, 2, math.nan, -math.inf, math.inf])
def test_q_out_of_range(q: float) -> None:
    s = build([1.0, 2.0])
    with pytest.raises(ValueError):
        quantile(s, q)
    with pytest.raises(ValueError):
        sk.quantiles(s, [0.5, q])
    with pytest.raises(ValueError):
        quantile({}, q)  # checked even when empty


def test_merge_sign_must_be_unit() -> None:
    with pytest.raises(ValueError):
        merge_into({}, {1: 1}, sign=2)


# ---------------------------------------------------------------- merge and subtract


def assert_clean(s: dict[int, int]) -> None:
    assert all(c > 0 for c in s.values()), "no residue keys and no negative counts"


@settings(max_examples=200, deadline=None)
@given(st.lists(durations, max_size=200), st.lists(durations, max_size=200))
def test_merge_and_subtract_are_bin_exact(a: list[float], b: list[float]) -> None:
    sa, sb = build(a), build(b)
    total = dict(sa)
    merge_into(total, sb)
    assert total == build(a + b)
    merge_into(total, sb, sign=-1)
    assert total == sa
    assert_clean(total)
    merge_into(total, sa, sign=-1)
    assert total == {}


def test_merge_matches_concatenation_seeded() -> None:
    rng = random.Random(11)
    parts = [gen(rng, 3000) for gen in GENERATORS]
    total: dict[int, int] = {}
    for part in parts:
        merge_into(total, build(part))
    everything = [v for part in parts for v in part]
    assert total == build(everything)
    assert total == dict(Counter(sk.bin_of(v) for v in everything))  # independent tally
    for q in QS:
        assert_close(everything, total, q)
    for part in parts[:2]:
        merge_into(total, build(part), sign=-1)
    rest = [v for part in parts[2:] for v in part]
    assert total == build(rest)
    assert_clean(total)


def test_subtract_single_values_leaves_no_residue() -> None:
    values = exponential_waits(random.Random(3), 5000)
    s = build(values)
    for v in values:
        add(s, sk.bin_of(v), -1)
    assert s == {}


def test_merge_into_itself() -> None:
    s = build([1.0, 2.0, 2.0])
    merge_into(s, s)
    assert s == build([1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    merge_into(s, s, sign=-1)
    assert s == {}


def test_rolling_ring_running_total_equals_recomputation() -> None:
    """A ring of time buckets: add on insert, subtract when a bucket leaves the window."""
    rng = random.Random(42)
    span_buckets = 30  # 10 s buckets: a 5-minute window
    buckets: dict[int, list[float]] = {}
    bucket_sketches: dict[int, dict[int, int]] = {}
    total: dict[int, int] = {}
    now_idx = 0
    for step in range(400):
        # 0..20 events in the current bucket, some late into older still-open buckets
        for _ in range(rng.randrange(21)):
            idx = now_idx - (rng.randrange(span_buckets) if rng.random() < 0.1 else 0)
            v = rng.choice(GENERATORS)(rng, 1)[0]
            buckets.setdefault(idx, []).append(v)
            add(bucket_sketches.setdefault(idx, {}), sk.bin_of(v))
            add(total, sk.bin_of(v))
        # advance the clock by 0..3 buckets, evicting whatever falls out
        for _ in range(rng.randrange(4)):
            now_idx += 1
            gone = now_idx - span_buckets
            if gone in bucket_sketches:
                merge_into(total, bucket_sketches.pop(gone), sign=-1)
                del buckets[gone]
        live = [v for vs in buckets.values() for v in vs]
        assert total == build(live), step
        assert_clean(total)
        if live:
            for q in QS:
                assert_close(live, total, q)
        else:
            assert quantile(total, 0.5) is None


def test_negative_bins_from_corrections_are_ignored_by_queries() -> None:
    # A correction subtracts a value whose original add fell in an evicted bucket.
    s = build([1.0, 2.0, 3.0])
    add(s, sk.bin_of(500.0), -1)
    assert s[sk.bin_of(500.0)] == -1
    assert sk.count(s) == 3
    assert quantile(s, 1.0) == sk.bin_estimate(sk.bin_of(3.0))
    assert sk.quantiles(s, [0.0, 1.0]) == [
        sk.bin_estimate(sk.bin_of(1.0)),
        sk.bin_estimate(sk.bin_of(3.0)),
    ]
    add(s, sk.bin_of(500.0), 1)  # the matching add arrives: the key goes away
    assert s == build([1.0, 2.0, 3.0])
    add(s, 5, 0)  # a zero count adds nothing, not even a key
    assert s == build([1.0, 2.0, 3.0])


# ---------------------------------------------------------------- memory bound


@pytest.mark.parametrize("hi", [DAY, YEAR])
def test_memory_follows_value_range(hi: float) -> None:
    lo = 0.01
    gamma = (1 + ALPHA) / (1 - ALPHA)
    # Values in (lo, hi] land in bins ceil(log_γ x) for x from just above lo to hi. That is
    # ceil(log_γ hi) − ceil(log_γ lo) + 1 ≤ floor(log_γ(hi/lo)) + 2 bins, plus the zero bin.
    bound = math.floor(math.log(hi / lo) / math.log(gamma)) + 2 + 1
    rng = random.Random(99)
    values = [*log_uniform(rng, 100_000, lo, hi), 0.0, lo, hi]
    s = build(values)
    assert len(s) <= bound
    assert len(s) >= bound - 2  # log-uniform data fills nearly every bin: the bound is tight
    assert {DAY: 801, YEAR: 1096}[hi] == bound
