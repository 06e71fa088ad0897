"""Erlang B/C/A staffing maths against kpis.md §5 test vectors and independent computation."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest

from wallboard.kpi import erlang
from wallboard.kpi.erlang import (
    agents_needed,
    erlang_a_metrics,
    erlang_b,
    erlang_c,
    erlang_c_metrics,
)
from wallboard.kpi.staffing import estimate_patience, forecast

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # the property tests skip; everything else still runs
    given = None

LAM1 = 100 / 1800  # test vector 1: 100 calls per 30 min, AHT 180 s -> A = 10 Erlangs
AHT1 = 180.0


def printed(x: float, shown: str) -> None:
    """Assert x rounds to the value the doc prints, to the doc's number of decimals."""
    decimals = len(shown.split(".")[1])
    assert f"{x:.{decimals}f}" == shown, (x, shown)


def vars_of(m: object) -> list[object]:
    """Field values of a slotted dataclass."""
    return [getattr(m, f) for f in m.__slots__]  # type: ignore[attr-defined]


# --- independent reference computations -------------------------------------------------

def b_exact(n: int, a: Fraction) -> Fraction:
    """Erlang B from the textbook formula (A^N/N!) / Σ_{k<=N} A^k/k!, in exact arithmetic."""
    terms = [a**k / math.factorial(k) for k in range(n + 1)]
    return terms[n] / sum(terms)


def c_exact(n: int, a: Fraction) -> Fraction:
    """Erlang C from the textbook form [A^N/N!·N/(N−A)] / [Σ_{k<N} A^k/k! + A^N/N!·N/(N−A)]."""
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def erlang_a_reference(n: int, lam: float, aht: float, tau: float, t: float,
                       dt: float = 0.01) -> dict[str, float]:
    """Erlang A by brute force: explicit π over 3000 queue states, G_j(T) by RK4 on the ODEs."""
    mu, theta, a = 1 / aht, 1 / tau, lam * aht
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(n + 1)]
    for j in range(1, 3000):
        logs.append(logs[-1] + math.log(lam / (n * mu + j * theta)))
    top = max(logs)
    pi = [math.exp(x - top) for x in logs]
    total = sum(pi)
    pi = [x / total for x in pi]
    queue = pi[n:]
    lq = sum(j * p for j, p in enumerate(queue))
    # Tagged arrival with j ahead: leaves j at rate Nμ + (j+1)θ (advance or own abandon),
    # is fed from j+1 at rate Nμ + (j+1)θ, and reaches an agent from j = 0 at rate Nμ.
    size = next(j for j in range(len(queue) - 1, -1, -1) if queue[j] > 1e-18) + 1
    out_rate = [n * mu + (j + 1) * theta for j in range(size)]

    def deriv(p: list[float]) -> list[float]:
        d = [-out_rate[j] * p[j] + (out_rate[j] * p[j + 1] if j + 1 < size else 0.0)
             for j in range(size)]
        return [*d, n * mu * p[0]]

    state = [*queue[:size], 0.0]
    for _ in range(round(t / dt)):
        k1 = deriv(state)
        k2 = deriv([s + dt / 2 * k for s, k in zip(state, k1, strict=True)])
        k3 = deriv([s + dt / 2 * k for s, k in zip(state, k2, strict=True)])
        k4 = deriv([s + dt * k for s, k in zip(state, k3, strict=True)])
        state = [s + dt / 6 * (x1 + 2 * x2 + 2 * x3 + x4)
                 for s, x1, x2, x3, x4 in zip(state, k1, k2, k3, k4, strict=True)]
    return {"service_level": sum(pi[:n]) + state[-1], "p_wait": sum(queue),
            "p_abandon": theta * lq / lam, "mean_wait_s": lq / lam}


# --- kpis.md test vectors ----------------------------------------------------------------

@pytest.mark.parametrize(("n", "p_wait", "sl", "asa", "occ"), [
    (11, "0.6821", "0.3896", "122.78", "0.9091"),
    (12, "0.4494", "0.6402", "40.44", "0.8333"),
    (13, "0.2853", "0.7956", "17.12", "0.7692"),
    (14, "0.17413", "0.88835", "7.84", "0.7143"),
    (15, "0.1020", "0.9415", "3.67", "0.6667"),
])
def test_vector_1_erlang_c_table(n: int, p_wait: str, sl: str, asa: str, occ: str) -> None:
    m = erlang_c_metrics(n, LAM1, AHT1, 20)
    assert m.traffic_erlangs == pytest.approx(10.0)
    printed(m.p_wait, p_wait)
    printed(m.service_level, sl)
    printed(m.asa_s, asa)
    printed(m.occupancy, occ)


def test_vector_1_needs_14_agents_matching_pyworkforce() -> None:
    s = agents_needed(LAM1, AHT1, 20, 0.80)
    assert (s.agents, s.met, s.model) == (14, True, "erlang_c")
    printed(s.service_level, "0.88835")
    printed(s.p_wait, "0.17413")
    # the full-precision figures quoted from the pyworkforce README
    assert s.service_level == pytest.approx(0.8883500191794669, rel=1e-12)
    assert s.p_wait == pytest.approx(0.1741319335950498, rel=1e-12)
    assert s.occupancy == pytest.approx(0.7142857142857143, rel=1e-12)
    assert math.ceil(s.agents / 0.7) == 20  # 30 % shrinkage, as the doc schedules
    # max_occupancy 0.85 (the README's call) does not bind here
    assert agents_needed(LAM1, AHT1, 20, 0.80, max_occupancy=0.85).agents == 14


def test_vector_2_erlang_b() -> None:
    printed(erlang_b(10, 10), "0.2146")
    printed(erlang_b(14, 10), "0.05682")


def test_vector_3_mitan() -> None:
    m = erlang_c_metrics(55, 360 / 1800, 240, 15)
    assert m.traffic_erlangs == pytest.approx(48.0)
    printed(m.occupancy, "0.8727")
    printed(m.p_wait, "0.2387")
    printed(m.service_level, "0.8459")
    printed(m.asa_s, "8.18")


@pytest.mark.parametrize(("n", "sl", "p_ab", "p_wait", "wait", "occ"), [
    (12, "0.7723", "0.0427", "0.3318", "12.81", "0.7977"),
    (13, "0.8582", "0.0250", "0.2258", "7.49", "0.7500"),
    (14, "0.9168", "0.0140", "0.1453", "4.20", "0.7043"),
])
def test_vector_4_erlang_a_table(n: int, sl: str, p_ab: str, p_wait: str, wait: str,
                                 occ: str) -> None:
    m = erlang_a_metrics(n, LAM1, AHT1, 300, 20)
    printed(m.service_level, sl)
    printed(m.p_abandon, p_ab)
    printed(m.p_wait, p_wait)
    printed(m.mean_wait_s, wait)
    printed(m.occupancy, occ)


def test_vector_4_needs_13_agents() -> None:
    s = agents_needed(LAM1, AHT1, 20, 0.80, patience_s=300)
    assert (s.agents, s.met, s.model) == (13, True, "erlang_a")
    printed(s.service_level, "0.8582")
    printed(s.p_abandon, "0.0250")
    assert math.ceil(s.agents / 0.7) == 19
    assert s.mean_wait_s / 60 == pytest.approx(0.125, abs=5e-4)  # pyworkforce: 0.125… min


def test_erlang_a_converges_to_erlang_c_as_patience_grows() -> None:
    a = erlang_a_metrics(14, LAM1, AHT1, 1e9, 20)
    c = erlang_c_metrics(14, LAM1, AHT1, 20)
    printed(a.service_level, "0.888350")
    assert a.service_level == pytest.approx(c.service_level, abs=1e-6)
    assert a.p_wait == pytest.approx(c.p_wait, abs=1e-6)
    assert a.mean_wait_s == pytest.approx(c.asa_s, rel=1e-6)
    assert a.p_abandon < 1e-7
    slow = [erlang_a_metrics(14, LAM1, AHT1, tau, 20).service_level
            for tau in (1e3, 1e4, 1e5, 1e6)]
    gaps = [abs(x - c.service_level) for x in slow]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-4
    inf = erlang_a_metrics(14, LAM1, AHT1, math.inf, 20)
    assert (inf.service_level, inf.p_wait, inf.p_abandon) == (c.service_level, c.p_wait, 0.0)


# --- against independent computation -----------------------------------------------------

@pytest.mark.parametrize("n", range(0, 31))
@pytest.mark.parametrize("a", ["0", "0.5", "1", "2.5", "7", "12", "29.9", "45"])
def test_erlang_b_equals_factorial_formula(n: int, a: str) -> None:
    exact = b_exact(n, Fraction(a))
    assert erlang_b(n, float(a)) == pytest.approx(float(exact), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize(("n", "a"), [(n, a) for n in range(1, 31)
                                      for a in ("0.5", "1", "2.5", "7", "12", "29.9", "45")
                                      if Fraction(a) < n])
def test_erlang_c_equals_textbook_form(n: int, a: str) -> None:
    assert erlang_c(n, float(a)) == pytest.approx(float(c_exact(n, Fraction(a))), rel=1e-12)


def test_erlang_c_metrics_follow_the_formulas() -> None:
    c = float(c_exact(14, Fraction(10)))
    m = erlang_c_metrics(14, LAM1, AHT1, 20)
    assert m.service_level == pytest.approx(1 - c * math.exp(-4 * 20 / 180), rel=1e-13)
    assert m.asa_s == pytest.approx(c * 180 / 4, rel=1e-13)


@pytest.mark.parametrize(("n", "a"), [(1000, 950), (1000, 999.5), (1000, 1), (1000, 2000),
                                      (200, 190), (5000, 4900)])
def test_large_systems_do_not_overflow(n: int, a: float) -> None:
    b, c = erlang_b(n, a), erlang_c(n, a)
    assert 0 <= b <= 1 and 0 <= c <= 1 and not math.isnan(b + c)
    if a == int(a) and n <= 1000:  # exact big-integer check: B = A^N / Σ A^k N!/k!
        s = sum(int(a) ** k * (math.factorial(n) // math.factorial(k)) for k in range(n + 1))
        assert b == pytest.approx(float(Fraction(int(a) ** n, s)), rel=1e-11)
    for m in (erlang_c_metrics(n, a / 180, 180, 20), erlang_a_metrics(n, a / 180, 180, 300, 20)):
        values = [v for v in vars_of(m) if isinstance(v, float)]
        assert all(not math.isnan(v) for v in values)
        assert 0 <= m.service_level <= 1 and 0 <= m.p_wait <= 1 and 0 <= m.occupancy <= 1


def test_erlang_c_at_n_1000_a_950_matches_exact_arithmetic() -> None:
    n, a = 1000, 950
    s = sum(a**k * (math.factorial(n) // math.factorial(k)) for k in range(n))
    top = a**n * n  # A^N/N!·N/(N−A), scaled by N!·(N−A)
    exact = Fraction(top, s * (n - a) + top)
    assert erlang_c(n, a) == pytest.approx(float(exact), rel=1e-11)


@pytest.mark.parametrize(("n", "lam", "aht", "tau", "t"), [
    (13, LAM1, AHT1, 300, 20),      # test vector 4
    (5, 0.03, 200, 60, 30),         # short patience
    (8, 0.08, 120, 900, 10),        # overloaded (A = 9.6 > N), long patience
    (20, 0.2, 150, 45, 60),         # overloaded, patience shorter than the threshold
])
def test_erlang_a_matches_brute_force_ode(n: int, lam: float, aht: float, tau: float,
                                          t: float) -> None:
    m = erlang_a_metrics(n, lam, aht, tau, t)
    ref = erlang_a_reference(n, lam, aht, tau, t)
    assert m.service_level == pytest.approx(ref["service_level"], abs=1e-8)
    assert m.p_wait == pytest.approx(ref["p_wait"], abs=1e-12)
    assert m.p_abandon == pytest.approx(ref["p_abandon"], abs=1e-12)
    assert m.mean_wait_s == pytest.approx(ref["mean_wait_s"], rel=1e-10)


@pytest.mark.parametrize(("n", "lam", "aht", "tau", "t"), [
    (13, LAM1, AHT1, 300, 20), (200, 190 / 180, 180, 300, 20), (200, 2.0, 180, 60, 20),
    (50, 0.5, 90, 20, 60), (3, 0.05, 300, 30, 300), (120, 1.0, 100, 200, 5),
    (200, 10, 180, 5, 60), (40, 0.2, 240, 1e6, 20),
])
def test_uniformization_and_closed_form_agree(monkeypatch: pytest.MonkeyPatch, n: int,
                                              lam: float, aht: float, tau: float,
                                              t: float) -> None:
    monkeypatch.setattr(erlang, "_UNIFORMIZATION_BUDGET", 10**9)
    uniform = erlang_a_metrics(n, lam, aht, tau, t).service_level
    monkeypatch.setattr(erlang, "_UNIFORMIZATION_BUDGET", 0)
    closed = erlang_a_metrics(n, lam, aht, tau, t).service_level
    assert uniform == pytest.approx(closed, abs=1e-12)


@pytest.mark.parametrize(("n", "lam", "tau"), [
    (14, 14 / 180, 1e6),           # critically loaded, patience ~ forever: long chain
    (14, 14 / 180 * 0.9995, 1e6),  # just stable
    (14, 14 / 180 * 1.001, 1e6),   # just overloaded
    (100, 0.6, 5e4),               # overloaded: the mode alone is past a small cap
])
def test_long_patience_limit_tracks_the_full_chain(monkeypatch: pytest.MonkeyPatch, n: int,
                                                   lam: float, tau: float) -> None:
    exact = erlang_a_metrics(n, lam, AHT1, tau, 20)
    monkeypatch.setattr(erlang, "_MAX_QUEUE_STATES", 300)  # force the limit
    approx = erlang_a_metrics(n, lam, AHT1, tau, 20)
    assert approx.mean_wait_s == pytest.approx(exact.mean_wait_s, rel=0.03)
    assert approx.p_abandon == pytest.approx(exact.p_abandon, rel=0.03)
    assert approx.occupancy == pytest.approx(exact.occupancy, abs=1e-3)
    assert approx.service_level == pytest.approx(exact.service_level, abs=0.03)
    assert approx.p_wait == pytest.approx(exact.p_wait, abs=0.03)


def test_degenerate_inputs_stay_fast() -> None:
    cases = [(14, 14 / 180, 180, 1e9, 20), (14, 2.0, 180, 1e4, 20), (200, 10, 180, 5, 60),
             (113, 197.6 / 60, 60, 4166, 300), (2, 0.01, 250, 15000, 300), (1000, 6, 180, 1, 600)]
    for args in cases:
        start = time.perf_counter()
        m = erlang_a_metrics(*args)
        assert time.perf_counter() - start < 0.1, args  # ~5 ms here; loose for busy CI
        assert not math.isnan(m.service_level + m.mean_wait_s + m.p_abandon + m.occupancy)


def test_erlang_a_overload_is_finite_and_bounded() -> None:
    for tau in (5, 60, 600, 1e4, 1e9):
        start = time.perf_counter()
        m = erlang_a_metrics(14, 2.0, 180, tau, 20)  # A = 360 on 14 agents
        assert time.perf_counter() - start < 0.5
        # throughput is at most Nμ, so at least 1 − N/A of callers abandon
        assert m.p_abandon >= 1 - 14 / 360 - 1e-9
        assert m.p_wait > 0.9999 and m.service_level <= 1 - m.p_abandon + 1e-12
        assert m.mean_wait_s == pytest.approx(m.p_abandon * tau, rel=1e-9)
        assert m.occupancy <= 1.0


def test_estimate_patience_inverts_the_model() -> None:
    m = erlang_a_metrics(13, LAM1, AHT1, 300, 20)
    assert estimate_patience(m.mean_wait_s, m.p_abandon) == pytest.approx(300, rel=1e-9)
    for w, p in [(None, 0.1), (10, None), (10, 0), (0, 0.1), (10, 1.5), (-1, 0.1),
                 (math.nan, 0.1), (10, math.inf)]:
        assert estimate_patience(w, p) is None


# --- edge cases and API behaviour --------------------------------------------------------

def test_unstable_and_empty_erlang_c() -> None:
    assert erlang_c(10, 10) == 1.0 and erlang_c(3, 10) == 1.0
    assert erlang_c(0, 0) == 0.0 and erlang_c(5, 0) == 0.0
    m = erlang_c_metrics(10, LAM1, AHT1, 20)
    assert (m.p_wait, m.service_level, m.asa_s, m.occupancy) == (1.0, 0.0, math.inf, 1.0)
    idle = erlang_c_metrics(3, 0.0, AHT1, 20)
    assert (idle.p_wait, idle.service_level, idle.asa_s, idle.occupancy) == (0, 1, 0, 0)
    assert erlang_b(0, 5) == 1.0 and erlang_b(4, 0) == 0.0


def test_erlang_a_edges() -> None:
    nobody = erlang_a_metrics(0, LAM1, AHT1, 120, 20)
    assert (nobody.service_level, nobody.p_abandon, nobody.mean_wait_s) == (0.0, 1.0, 120.0)
    idle = erlang_a_metrics(4, 0.0, AHT1, 120, 20)
    assert (idle.service_level, idle.p_wait, idle.p_abandon) == (1.0, 0.0, 0.0)
    at_zero = erlang_a_metrics(13, LAM1, AHT1, 300, 0)  # SL(0) is the share never waiting
    assert at_zero.service_level == pytest.approx(1 - at_zero.p_wait, abs=1e-14)
    huge = erlang_a_metrics(1000, 0.01, 100, 300, 20)  # A = 1: B underflows
    assert (huge.p_wait, huge.service_level) == (0.0, 1.0)


def test_agents_needed_zero_traffic_and_unreachable_targets() -> None:
    for patience in (None, 300):
        z = agents_needed(0.0, AHT1, 20, 0.8, patience_s=patience)
        assert (z.agents, z.met, z.service_level) == (0, True, 1.0)
        capped = agents_needed(LAM1, AHT1, 20, 0.8, patience_s=patience, max_agents=12)
        assert (capped.agents, capped.met, capped.evaluated_agents) == (None, False, 12)
        assert capped.service_level < 0.8
        tiny = agents_needed(LAM1, AHT1, 20, 0.8, patience_s=patience, max_agents=3)
        assert (tiny.agents, tiny.met, tiny.evaluated_agents) == (None, False, 3)
    strict = agents_needed(LAM1, AHT1, 20, 0.9999, max_agents=22)  # 23 would be needed
    assert strict.agents is None and strict.evaluated_agents == 22
    assert agents_needed(LAM1, AHT1, 20, 0.9999).agents == 23


def test_agents_needed_respects_max_occupancy() -> None:
    s = agents_needed(LAM1, AHT1, 20, 0.5, max_occupancy=0.6)  # SL alone would need 12
    assert s.agents == 17 and s.occupancy <= 0.6
    assert agents_needed(LAM1, AHT1, 20, 0.5, patience_s=300, max_occupancy=0.6).occupancy <= 0.6


@pytest.mark.parametrize("bad", [
    lambda: erlang_b(-1, 1), lambda: erlang_b(2.0, 1), lambda: erlang_b(True, 1),  # type: ignore[arg-type]
    lambda: erlang_b(3, -1), lambda: erlang_c(3, math.nan),
    lambda: erlang_c_metrics(3, 0.1, 0, 20), lambda: erlang_c_metrics(3, math.inf, 60, 20),
    lambda: erlang_a_metrics(3, 0.1, 60, 0, 20), lambda: erlang_a_metrics(3, 0.1, 60, 30, -1),
    lambda: agents_needed(0.1, 60, 20, 1.2), lambda: agents_needed(0.1, 60, 20, 0.8,
                                                                   max_occupancy=0),
])
def test_invalid_input_raises(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        bad()


def test_forecast_tile_values() -> None:
    c = forecast(LAM1, AHT1, 20, 0.8, staffed=13)
    assert c == {"agents_needed": 14, "forecast_sl": pytest.approx(0.7955947884),
                 "forecast_wait_s": pytest.approx(17.1162272), "forecast_abandon": None}
    a = forecast(LAM1, AHT1, 20, 0.8, staffed=12, patience_s=300)
    assert a["agents_needed"] == 13
    printed(a["forecast_sl"], "0.7723")  # type: ignore[arg-type]
    printed(a["forecast_wait_s"], "12.81")  # type: ignore[arg-type]
    printed(a["forecast_abandon"], "0.0427")  # type: ignore[arg-type]
    over = forecast(LAM1, AHT1, 20, 0.8, staffed=9)
    assert (over["forecast_sl"], over["forecast_wait_s"]) == (0.0, math.inf)
    assert forecast(LAM1, AHT1, 20, 0.8, 12, patience_s=math.inf)["forecast_abandon"] is None


@pytest.mark.parametrize("args", [
    (None, AHT1, 20, 0.8, 12), (0.0, AHT1, 20, 0.8, 12), (math.nan, AHT1, 20, 0.8, 12),
    (LAM1, None, 20, 0.8, 12), (LAM1, 0.0, 20, 0.8, 12), (LAM1, -5.0, 20, 0.8, 12),
    (LAM1, AHT1, None, 0.8, 12),
])
def test_forecast_without_arrivals_or_aht_is_all_none(args: tuple) -> None:
    assert set(forecast(*args).values()) == {None}


def test_forecast_with_partial_inputs() -> None:
    no_staff = forecast(LAM1, AHT1, 20, 0.8, None)
    assert no_staff["agents_needed"] == 14 and no_staff["forecast_sl"] is None
    no_target = forecast(LAM1, AHT1, 20, None, 14)
    assert no_target["agents_needed"] is None and no_target["forecast_sl"] is not None
    assert forecast(LAM1, AHT1, 20, 0.8, 12, patience_s=None)["forecast_abandon"] is None
    assert forecast(LAM1, AHT1, 20, 0.8, 12, patience_s=-3)["forecast_abandon"] is None
    assert forecast(LAM1, AHT1, 20, 0.9999, 12, max_agents=18)["agents_needed"] is None


# --- properties ----------------------------------------------------------------------------

if given is not None:
    traffic = st.floats(0.05, 60)
    ahts = st.floats(30, 600)
    thresholds = st.floats(0, 120)
    patiences = st.floats(10, 3000)

    @settings(max_examples=150, deadline=None)
    @given(traffic, ahts, thresholds, st.integers(0, 90))
    def test_erlang_c_sl_rises_with_agents(a: float, aht: float, t: float, n: int) -> None:
        lo, hi = erlang_c_metrics(n, a / aht, aht, t), erlang_c_metrics(n + 1, a / aht, aht, t)
        assert hi.service_level >= lo.service_level - 1e-12
        assert hi.p_wait <= lo.p_wait + 1e-12 and hi.asa_s <= lo.asa_s

    @settings(max_examples=100, deadline=None)
    @given(traffic, ahts, thresholds, patiences, st.integers(0, 90))
    def test_erlang_a_sl_rises_with_agents(a: float, aht: float, t: float, tau: float,
                                           n: int) -> None:
        lo = erlang_a_metrics(n, a / aht, aht, tau, t)
        hi = erlang_a_metrics(n + 1, a / aht, aht, tau, t)
        assert hi.service_level >= lo.service_level - 1e-12
        assert hi.p_abandon <= lo.p_abandon + 1e-12
        assert hi.mean_wait_s <= lo.mean_wait_s + 1e-9
        for m in (lo, hi):
            assert 0 <= m.service_level <= 1 - m.p_abandon + 1e-12  # abandoners never count
            assert 0 <= m.occupancy <= 1

    @settings(max_examples=100, deadline=None)
    @given(traffic, ahts, st.floats(0.1, 300), patiences, st.floats(0.5, 1.3))
    def test_uniformization_matches_the_closed_form(a: float, aht: float, t: float,
                                                    tau: float, load: float) -> None:
        n = max(1, round(a / load))
        lam = a / aht
        budget = erlang._UNIFORMIZATION_BUDGET
        try:
            erlang._UNIFORMIZATION_BUDGET = 10**9
            uniform = erlang_a_metrics(n, lam, aht, tau, t).service_level
            erlang._UNIFORMIZATION_BUDGET = 0
            closed = erlang_a_metrics(n, lam, aht, tau, t).service_level
        finally:
            erlang._UNIFORMIZATION_BUDGET = budget
        assert uniform == pytest.approx(closed, abs=1e-11)

    @settings(max_examples=80, deadline=None)
    @given(traffic, ahts, st.floats(1, 90), st.floats(0.3, 0.97),
           st.one_of(st.none(), patiences), st.floats(0.5, 1.0))
    def test_agents_needed_is_the_smallest_that_meets_the_target(
            a: float, aht: float, t: float, target: float, tau: float | None,
            max_occ: float) -> None:
        lam = a / aht
        s = agents_needed(lam, aht, t, target, patience_s=tau, max_occupancy=max_occ)
        assert s.met and s.agents is not None

        def meets(n: int) -> bool:
            m = (erlang_c_metrics(n, lam, aht, t) if tau is None
                 else erlang_a_metrics(n, lam, aht, tau, t))
            stable = tau is not None or n > lam * aht
            return stable and m.service_level >= target and m.occupancy <= max_occ

        assert meets(s.agents) and s.service_level >= target and s.occupancy <= max_occ
        assert not meets(s.agents - 1)
else:
    def test_properties_need_hypothesis() -> None:
        pytest.skip("hypothesis is not installed")
