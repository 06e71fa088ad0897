"""Erlang B, C and A staffing maths for live wallboard forecasts (kpis.md §5), pure Python.

Symbols: λ arrivals/s, h AHT (s), μ = 1/h, A = λh Erlangs, N agents, T the service-level
threshold (s), τ mean patience (s), θ = 1/τ.  Every service level here is "answered within T
over all arrivals"; Erlang A counts abandoners as failures.

Cost (CPython, one core): erlang_b and erlang_c are O(N) float steps, a few µs at N = 200.
erlang_a_metrics is O(J + M²/2): J queue states until the chain's tail is negligible, and M
uniformization steps, M ≈ ΛT + 8√(ΛT) with Λ ≈ Nμ + θ·(states a caller can clear within T).
That is about 0.1 ms at N = 15 and about 1-3 ms at N = 200, AHT 180 s, T = 20 s.

Erlang A truncation rules:
- Queue states j = n − N are summed until the ratio q = λ/(Nμ + (j+1)θ) is below 1 (it then
  keeps falling), and the geometric bounds on the dropped tails Σw and Σj·w are ≤ 1e-15 of
  the sums so far.  Past _MAX_QUEUE_STATES states (only when λτ is about 10⁵ or more) the
  θ → 0 limit is returned instead: Erlang C with P(ab) ≈ θ·ASA when λ < Nμ, else the fluid
  overload limit (every caller waits, P(ab) = 1 − Nμ/λ, SL 0).
- Uniformization drops Poisson mass beyond M where P(Poisson(ΛT) > M) ≤ 1e-14, and so the
  states j ≥ M, which cannot reach an agent in M steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

_TAIL_EPS = 1e-15  # relative mass dropped from the queue-length distribution
_LOG_POISSON_TAIL = math.log(1e-14)  # Poisson mass dropped by uniformization
_MAX_QUEUE_STATES = 50_000  # caps Erlang A work near θ → 0 (about 15 ms at the cap)
_RESCALE = 1e200  # keeps heavy-overload queue weights finite without logs in the hot loop
_LOG_RESCALE = math.log(_RESCALE)

Model = Literal["erlang_c", "erlang_a"]


@dataclass(frozen=True, slots=True)
class ErlangCResult:
    """M/M/N (no abandonment) metrics for one staffing level."""

    agents: int
    traffic_erlangs: float
    p_wait: float
    service_level: float  # answered within T over all arrivals; 0 when N <= A
    asa_s: float  # mean wait over all arrivals; inf when N <= A
    occupancy: float  # A/N; 1.0 when saturated, 0.0 with no agents


@dataclass(frozen=True, slots=True)
class ErlangAResult:
    """M/M/N+M (exponential patience) metrics for one staffing level."""

    agents: int
    traffic_erlangs: float
    p_wait: float
    service_level: float  # answered within T over all arrivals; abandoners are failures
    p_abandon: float
    mean_wait_s: float  # over all arrivals, abandoners' time in queue included
    occupancy: float  # λ(1 − P_ab)/(Nμ); 0.0 with no agents


@dataclass(frozen=True, slots=True)
class StaffingResult:
    """The smallest staffing that meets a target, and the metrics at it."""

    agents: int | None  # None: the target cannot be met within max_agents
    met: bool
    model: Model
    traffic_erlangs: float
    evaluated_agents: int  # the N the metrics describe (max_agents when not met)
    service_level: float
    p_wait: float
    mean_wait_s: float  # ASA over all arrivals (Erlang C) or E[W] over all arrivals (A)
    p_abandon: float  # always 0.0 for Erlang C
    occupancy: float


def _agents_arg(n: int) -> int:
    """Validate an agent count."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"agents must be an int >= 0, got {n!r}")
    return n


def _number(name: str, x: float, *, positive: bool = False, allow_inf: bool = False) -> float:
    """Validate a non-negative (or positive) number and return it as a float."""
    x = float(x)
    if math.isnan(x) or x < 0 or (positive and x == 0) or (math.isinf(x) and not allow_inf):
        kind = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {kind}, got {x!r}")
    return x


def erlang_b(n: int, a: float) -> float:
    """Erlang B blocking probability B(n, a) by the overflow-free recursion; O(n)."""
    _agents_arg(n)
    a = _number("traffic", a)
    b = 1.0
    for k in range(1, n + 1):
        ab = a * b
        b = ab / (k + ab)
    return b


def _c_from_b(n: int, a: float, b: float) -> float:
    """Erlang C from Erlang B for a stable queue (n > a): C = nB / (n − a(1 − B))."""
    return min(1.0, n * b / (n - a * (1.0 - b)))  # the denominator exceeds n − a > 0


def erlang_c(n: int, a: float) -> float:
    """Erlang C probability of waiting; 1.0 when n <= a, 0.0 with no traffic; O(n)."""
    _agents_arg(n)
    a = _number("traffic", a)
    if a == 0:
        return 0.0  # nobody arrives, so nobody waits (even with n = 0)
    if n <= a:
        return 1.0
    return _c_from_b(n, a, erlang_b(n, a))


def _c_metrics(n: int, a: float, aht: float, t: float, b: float) -> ErlangCResult:
    """Erlang C metrics given B(n, a) already computed."""
    if a == 0:
        return ErlangCResult(n, 0.0, 0.0, 1.0, 0.0, 0.0)
    if n <= a:
        return ErlangCResult(n, a, 1.0, 0.0, math.inf, 1.0 if n else 0.0)
    c = _c_from_b(n, a, b)
    sl = 1.0 - c * math.exp(-(n - a) * t / aht)
    return ErlangCResult(n, a, c, max(0.0, sl), c * aht / (n - a), a / n)


def erlang_c_metrics(n: int, arrival_rate_per_s: float, aht_s: float,
                     threshold_s: float) -> ErlangCResult:
    """P(wait), SL(T), ASA and occupancy for N agents under Erlang C; O(N), µs."""
    _agents_arg(n)
    lam = _number("arrival_rate_per_s", arrival_rate_per_s)
    aht = _number("aht_s", aht_s, positive=True)
    t = _number("threshold_s", threshold_s)
    a = lam * aht
    return _c_metrics(n, a, aht, t, erlang_b(n, a) if 0 < a < n else 0.0)


def _poisson_horizon(mean: float) -> int:
    """Smallest m >= mean with P(Poisson(mean) > m) <= 1e-14 (geometric tail bound)."""
    log_mean = math.log(mean)
    m = math.ceil(mean)
    while True:
        # P(X > m) <= pmf(m+1) · (m+2)/(m+2−mean): successive pmf ratios stay below mean/(m+2)
        log_next = -mean + (m + 1) * log_mean - math.lgamma(m + 2)
        if log_next + math.log((m + 2) / (m + 2 - mean)) <= _LOG_POISSON_TAIL:
            return m
        m += 1


def _served_within(probs: list[float], nmu: float, theta: float, t: float) -> float:
    """Σ_j probs[j]·G_j(t): mass of waiting arrivals answered by t, by uniformization."""
    # A tagged caller with j ahead moves to j−1 (or to an agent from j = 0) at rate Nμ + jθ
    # and abandons at rate θ.  Propagate the arrival-time distribution over j forwards
    # through the uniformized chain; the absorbed "answered" mass after m jumps, weighted by
    # Poisson(Λt) jump counts, is the answered-within-t probability.
    if t == 0 or not probs:
        return 0.0
    k = len(probs) - 1
    while True:  # only states a caller can clear within the Poisson horizon matter
        lam_u = nmu + (k + 1) * theta  # the fastest exit rate among the states kept
        m_max = _poisson_horizon(lam_u * t)
        if m_max - 1 >= k:
            break
        k = m_max - 1  # fewer states, smaller Λ, shorter horizon: converges in a few rounds
    mt = lam_u * t
    log_mt = math.log(mt)
    adv = [(nmu + j * theta) / lam_u for j in range(k + 1)]
    stay = [1.0 - (nmu + (j + 1) * theta) / lam_u for j in range(k + 1)]
    adv_up = [*adv[1:], 0.0]  # inflow into j from j+1
    v = probs[: k + 1]
    served = acc = 0.0
    for m in range(1, m_max + 1):
        served += adv[0] * v[0]
        acc += math.exp(-mt + m * log_mt - math.lgamma(m + 1)) * served
        if m == m_max:
            break
        # after m jumps only states j <= m_max − m − 1 can still reach an agent in time
        length = min(len(v), m_max - m)
        upper = v[1 : length + 1]
        if len(upper) < length:
            upper.append(0.0)
        v = [s * x + d * y for s, x, d, y in zip(stay, v, adv_up, upper, strict=False)]
    return acc


def _a_theta_limit(n: int, lam: float, aht: float, tau: float, t: float) -> ErlangAResult:
    """θ → 0 limit used when the queue chain is too long to sum (λτ of order 10⁵ or more)."""
    a = lam * aht
    if n > a:  # stable without abandonment: Erlang C, abandonment to first order in θ
        c = _c_metrics(n, a, aht, t, erlang_b(n, a))
        p_ab = min(1.0, c.asa_s / tau)
        return ErlangAResult(n, a, c.p_wait, c.service_level, p_ab, c.asa_s,
                             a * (1.0 - p_ab) / n)
    p_ab = 1.0 - n / a  # fluid overload: agents always busy, the excess abandons
    return ErlangAResult(n, a, 1.0, 0.0, p_ab, p_ab * tau, 1.0)


def erlang_a_metrics(n: int, arrival_rate_per_s: float, aht_s: float, patience_s: float,
                     threshold_s: float) -> ErlangAResult:
    """SL(T), P(abandon), P(wait), E[W] and occupancy under Erlang A; O(J + M²/2), ≤ ms."""
    _agents_arg(n)
    lam = _number("arrival_rate_per_s", arrival_rate_per_s)
    aht = _number("aht_s", aht_s, positive=True)
    tau = _number("patience_s", patience_s, positive=True, allow_inf=True)
    t = _number("threshold_s", threshold_s)
    a = lam * aht
    if lam == 0:
        return ErlangAResult(n, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    if math.isinf(tau):  # nobody abandons: exactly Erlang C
        c = erlang_c_metrics(n, lam, aht, t)
        return ErlangAResult(n, a, c.p_wait, c.service_level, 0.0, c.asa_s, c.occupancy)
    if n == 0:  # everyone waits until their patience runs out
        return ErlangAResult(0, a, 1.0, 0.0, 1.0, tau, 0.0)
    theta = 1.0 / tau
    nmu = n / aht
    b = erlang_b(n, a)  # π_N / Σ_{k<=N} π_k: the Poisson part below N, without factorials
    if b == 0.0:  # P(all busy) underflowed (< 1e-308): waiting is negligible
        return ErlangAResult(n, a, 0.0, 1.0, 0.0, 0.0, a / n)
    # Queue weights w_j = π_{N+j}/π_N = Π_{i<=j} λ/(Nμ + iθ), rescaled when they get huge.
    weights = [1.0]
    w = q_sum = 1.0
    l_sum = 0.0
    shifts = 0
    j = 0
    while True:
        q = lam / (nmu + (j + 1) * theta)  # w_{j+1}/w_j, decreasing in j
        if q < 1.0:
            tail = w * q / (1.0 - q)  # ≥ Σ_{i>j} w_i since later ratios are smaller
            tail_l = w * q * (j * (1.0 - q) + 1.0) / (1.0 - q) ** 2  # ≥ Σ_{i>j} i·w_i
            if tail + tail_l <= _TAIL_EPS * (q_sum + l_sum):
                break
        j += 1
        if j > _MAX_QUEUE_STATES:
            return _a_theta_limit(n, lam, aht, tau, t)
        w *= q
        if w > _RESCALE:
            w /= _RESCALE
            q_sum /= _RESCALE
            l_sum /= _RESCALE
            weights = [x / _RESCALE for x in weights]
            shifts += 1
        weights.append(w)
        q_sum += w
        l_sum += j * w
    # Mass below N relative to π_N is (1 − B)/B, brought to the same rescaled units.
    below = math.exp(math.log1p(-b) - math.log(b) - shifts * _LOG_RESCALE) if b < 1 else 0.0
    total = below + q_sum
    lq = l_sum / total
    p_ab = min(1.0, theta * lq / lam)  # abandonment flow θ·L_q over arrivals λ
    answered_late = _served_within([x / total for x in weights], nmu, theta, t)
    sl = min(1.0, below / total + answered_late)
    return ErlangAResult(n, a, q_sum / total, sl, p_ab, lq / lam, a * (1.0 - p_ab) / n)


def _unmet(model: Model, a: float, n: int, m: ErlangCResult | ErlangAResult) -> StaffingResult:
    """A StaffingResult saying the target is out of reach, with the metrics at n."""
    return _staffing(None, model, a, n, m)


def _staffing(agents: int | None, model: Model, a: float, n: int,
              m: ErlangCResult | ErlangAResult) -> StaffingResult:
    """Flatten either model's metrics into a StaffingResult."""
    if isinstance(m, ErlangCResult):
        return StaffingResult(agents, agents is not None, model, a, n, m.service_level,
                              m.p_wait, m.asa_s, 0.0, m.occupancy)
    return StaffingResult(agents, agents is not None, model, a, n, m.service_level, m.p_wait,
                          m.mean_wait_s, m.p_abandon, m.occupancy)


def agents_needed(arrival_rate_per_s: float, aht_s: float, threshold_s: float,
                  target_sl: float, patience_s: float | None = None,
                  max_occupancy: float = 1.0, max_agents: int = 1000) -> StaffingResult:
    """Smallest N with SL >= target and occupancy <= max; C: O(N), A: ~log₂N model calls."""
    lam = _number("arrival_rate_per_s", arrival_rate_per_s)
    aht = _number("aht_s", aht_s, positive=True)
    t = _number("threshold_s", threshold_s)
    target = _number("target_sl", target_sl)
    occ_cap = _number("max_occupancy", max_occupancy, positive=True)
    _agents_arg(max_agents)
    if target > 1 or occ_cap > 1:
        raise ValueError("target_sl and max_occupancy must be at most 1")
    tau = None if patience_s is None else _number("patience_s", patience_s, positive=True,
                                                  allow_inf=True)
    model: Model = "erlang_c" if tau is None or math.isinf(tau) else "erlang_a"
    a = lam * aht
    if a == 0:
        return _staffing(0, model, 0.0, 0, _c_metrics(0, 0.0, aht, t, 1.0))
    n_occ = math.ceil(a / occ_cap)
    if n_occ > 1 and a / (n_occ - 1) <= occ_cap:  # guard against ceil of a rounded-up ratio
        n_occ -= 1
    if model == "erlang_c":
        return _search_c(a, aht, t, target, max(math.floor(a) + 1, n_occ), max_agents)
    assert tau is not None
    return _search_a(lam, aht, tau, t, target, occ_cap, a, max_agents)


def _search_c(a: float, aht: float, t: float, target: float, n: int,
              max_agents: int) -> StaffingResult:
    """Linear scan upwards from the first stable N, updating Erlang B in O(1) per step."""
    if n > max_agents:
        return _unmet("erlang_c", a, max_agents, _c_metrics(max_agents, a, aht, t,
                                                            erlang_b(max_agents, a)))
    b = erlang_b(n, a)
    while True:
        m = _c_metrics(n, a, aht, t, b)
        if m.service_level >= target:
            return _staffing(n, "erlang_c", a, n, m)
        if n >= max_agents:
            return _unmet("erlang_c", a, n, m)
        n += 1
        b = a * b / (n + a * b)


def _search_a(lam: float, aht: float, tau: float, t: float, target: float, occ_cap: float,
              a: float, max_agents: int) -> StaffingResult:
    """Gallop then bisect on N, relying on SL rising and occupancy falling with N."""
    cache: dict[int, ErlangAResult] = {}

    def ok(n: int) -> bool:
        if n not in cache:
            cache[n] = erlang_a_metrics(n, lam, aht, tau, t)
        return cache[n].service_level >= target and cache[n].occupancy <= occ_cap

    # SL <= answered share <= Nμ/λ = N/A, so fewer than target·A agents can never do
    lo = max(1, math.ceil(target * a) - 1)
    if lo > max_agents:
        return _unmet("erlang_a", a, max_agents, erlang_a_metrics(max_agents, lam, aht, tau, t))
    guess = _search_c(a, aht, t, target, max(math.floor(a) + 1, lo), max_agents)
    hi = min(max(guess.evaluated_agents, lo), max_agents)  # Erlang C's answer is a good start
    if ok(hi):
        bad = lo - 1  # never evaluated: treated as failing
    else:
        bad, step = hi, 1
        while True:  # gallop upwards
            hi = min(bad + step, max_agents)
            if ok(hi):
                break
            if hi == max_agents:
                return _unmet("erlang_a", a, hi, cache[hi])
            bad, step = hi, step * 2
    while hi - bad > 1:  # invariant: ok(hi), not ok(bad) (or bad below the floor)
        mid = (bad + hi) // 2
        if ok(mid):
            hi = mid
        else:
            bad = mid
    return _staffing(hi, "erlang_a", a, hi, cache[hi])


def _usable(x: float | None) -> float | None:
    """A finite, non-negative float, or None for missing or garbage input."""
    if x is None or isinstance(x, bool):
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x >= 0 else None


def forecast(arrival_rate_per_s: float | None, aht_s: float | None, threshold_s: float | None,
             target_sl: float | None, staffed: int | None, patience_s: float | None = None,
             *, max_occupancy: float = 1.0, max_agents: int = 1000) -> dict[str, float | None]:
    """The live staffing tile values (kpis.py names); never raises on missing input; ≤ ms."""
    # Keys match LIVE_KPIS.  None means not computable (no arrivals or AHT yet, missing
    # inputs) or, for agents_needed, out of reach within max_agents.  forecast_wait_s is
    # inf when the staffed agents cannot keep up under Erlang C (orjson sends null).
    out: dict[str, float | None] = dict.fromkeys(
        ("agents_needed", "forecast_sl", "forecast_wait_s", "forecast_abandon"))
    lam, aht, t = _usable(arrival_rate_per_s), _usable(aht_s), _usable(threshold_s)
    if not lam or not aht or t is None:
        return out
    tau = _usable(patience_s)
    tau = tau if tau and math.isfinite(tau) else None  # no usable patience: Erlang C
    target = _usable(target_sl)
    occ = _usable(max_occupancy)
    if target is not None and target <= 1 and occ and occ <= 1:
        s = agents_needed(lam, aht, t, target, tau, occ, max(0, int(max_agents)))
        out["agents_needed"] = s.agents
    n = _usable(staffed)
    if n is not None:
        n = int(n)
        if tau is None:
            c = erlang_c_metrics(n, lam, aht, t)
            out.update(forecast_sl=c.service_level, forecast_wait_s=c.asa_s)
        else:
            m = erlang_a_metrics(n, lam, aht, tau, t)
            out.update(forecast_sl=m.service_level, forecast_wait_s=m.mean_wait_s,
                       forecast_abandon=m.p_abandon)
    return out


def estimate_patience(mean_wait_all_s: float | None, p_abandon: float | None) -> float | None:
    """Rough mean patience τ ≈ E[W]/P(ab) from one window; None when not estimable."""
    # Exact for exponential patience in steady state (P(ab) = θ·E[W], E[W] over all arrivals
    # with abandoners' waits included).  Real patience is not exponential and a window is not
    # steady state, so treat the result as an order of magnitude; few abandons make it noisy.
    w, p = _usable(mean_wait_all_s), _usable(p_abandon)
    if not w or not p or p > 1:
        return None
    return w / p
