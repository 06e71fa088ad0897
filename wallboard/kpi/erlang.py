"""Erlang B, C and A staffing maths for live wallboard forecasts (kpis.md §5), pure Python.

Symbols: λ arrivals/s, h AHT (s), μ = 1/h, A = λh Erlangs, N agents, T the service-level
threshold (s), τ mean patience (s), θ = 1/τ.  Service levels are "answered within T over all
arrivals"; Erlang A counts abandoners as failures.

Cost (CPython 3.11, one core, best of repeats): erlang_b/erlang_c are O(N), ~3 µs at N = 15
and ~14 µs at N = 200.  erlang_a_metrics is O(J + M·(K + 16)): J queue states summed, then
uniformization with M Poisson jumps (M ≈ ΛT + 8√(ΛT)) over K <= M states; ~0.1 ms at N = 15
and ~0.4-0.6 ms at N = 200 (AHT 180 s, T = 20 s).  Beyond _UNIFORMIZATION_BUDGET the same
sum comes in O(J) from an exact incomplete-gamma identity, and J is capped, so no call
takes more than about 5 ms.

Bounds (nothing loops on hostile input): traffic above MAX_TRAFFIC_ERLANGS with more than
MAX_AGENTS agents, or in agents_needed, raises NotComputable (a ValueError); Erlang B stops as
soon as B underflows to 0 (it stays 0 exactly), so 10¹² agents cost no more than about A + a
few hundred steps; the Poisson horizon of a huge ΛT comes from a Chernoff bound instead of a
scan; agents_needed searches at most MAX_AGENTS agents.  Every call stays within about 10 ms
whatever its arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

_TAIL_EPS = 1e-15  # relative mass dropped from the queue-length distribution
_LOG_POISSON_TAIL = math.log(1e-14)  # Poisson mass dropped by uniformization
_MAX_QUEUE_STATES = 10_000  # caps the Erlang A chain near θ → 0 (about 4 ms at the cap)
_UNIFORMIZATION_BUDGET = 12_000  # jumps × (states + 16 for per-jump overhead) ≈ 2.5 ms
MAX_TRAFFIC_ERLANGS = 10_000.0  # A = λh above this is not computed (NotComputable)
MAX_AGENTS = 10_000  # agents_needed never searches beyond this many agents (≈ 3 ms a scan)
_POISSON_SCAN_MEAN = 10_000.0  # above this mean the horizon comes from a Chernoff bound

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


class NotComputable(ValueError):
    """The inputs are beyond what these formulas compute in bounded time (see MAX_*)."""


def _traffic(a: float) -> float:
    """Refuse traffic beyond MAX_TRAFFIC_ERLANGS: the O(A) recursions would run too long."""
    if a > MAX_TRAFFIC_ERLANGS:
        raise NotComputable(f"traffic {a:g} Erlangs exceeds {MAX_TRAFFIC_ERLANGS:g}")
    return a


def _agents_arg(n: int) -> None:
    """Validate an agent count."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"agents must be an int >= 0, got {n!r}")


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
    if n > MAX_AGENTS:
        _traffic(a)  # about min(n, A + a tail) steps: only both large is too long
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)  # B_k = A·B_{k−1} / (k + A·B_{k−1}), always in (0, 1]
        if b == 0.0:  # underflowed: every later B_k is exactly 0 too
            break
    return b


def erlang_c(n: int, a: float) -> float:
    """Erlang C probability of waiting; 1.0 when n <= a, 0.0 with no traffic; O(n)."""
    _agents_arg(n)
    a = _number("traffic", a)  # a = 0: nobody arrives, so nobody waits (even with n = 0)
    return _c_metrics(n, a, 1.0, 0.0, erlang_b(n, a) if 0 < a < n else 0.0).p_wait


def _c_metrics(n: int, a: float, aht: float, t: float, b: float) -> ErlangCResult:
    """Erlang C metrics given B(n, a) already computed."""
    if a == 0:
        return ErlangCResult(n, 0.0, 0.0, 1.0, 0.0, 0.0)
    if n <= a:
        return ErlangCResult(n, a, 1.0, 0.0, math.inf, 1.0 if n else 0.0)
    c = min(1.0, n * b / (n - a * (1.0 - b)))  # C = NB / (N − A(1 − B)); denominator > N − A
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
    if mean > _POISSON_SCAN_MEAN:
        # Chernoff: P(X >= mean + x) <= exp(−x²/(2(mean + x/3))); solve for that = 1e-14.
        # A few more jumps than the scan would find, in O(1) rather than O(√mean).
        c = -_LOG_POISSON_TAIL
        return math.ceil(mean + c / 3 + math.sqrt(c * c / 9 + 2 * c * mean))
    log_mean = math.log(mean)
    m = math.ceil(mean)
    while True:
        # P(X > m) <= pmf(m+1) · (m+2)/(m+2−mean): successive pmf ratios stay below mean/(m+2)
        log_next = -mean + (m + 1) * log_mean - math.lgamma(m + 2)
        if log_next + math.log((m + 2) / (m + 2 - mean)) <= _LOG_POISSON_TAIL:
            return m
        m += 1


def _queue_log_weights(lam: float, nmu: float,
                       theta: float) -> tuple[list[float], float, float] | None:
    """log w_j, w_j = π_{N+j}/π_N, up to the truncation point, with log Σw and log Σj·w."""
    logs = [0.0]
    lw = ref = 0.0  # the sums are kept in units of e^ref so a deep queue cannot overflow
    w = q_sum = 1.0
    l_sum = 0.0
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
            return None
        lw += math.log(q)
        w *= q
        if w > 1e200:
            ref += math.log(w)
            q_sum, l_sum, w = q_sum / w, l_sum / w, 1.0
        logs.append(lw)
        q_sum += w
        l_sum += j * w
    return logs, ref + math.log(q_sum), ref + math.log(l_sum) if l_sum > 0 else -math.inf


def _uniformization_size(k: int, nmu: float, theta: float, t: float) -> tuple[int, int, float]:
    """Highest useful state K, Poisson horizon M and rate Λ for answering within t."""
    while True:  # states j >= M cannot reach an agent within M jumps, so drop them
        lam_u = nmu + (k + 1) * theta  # the fastest exit rate among the states kept
        m_max = _poisson_horizon(lam_u * t)
        if m_max - 1 >= k:
            return k, m_max, lam_u
        k = m_max - 1  # fewer states, smaller Λ, shorter horizon: converges in a few rounds


def _served_within(probs: list[float], nmu: float, theta: float, t: float, m_max: int,
                   lam_u: float) -> float:
    """Σ_j probs[j]·G_j(t): arrivals that wait and are answered by t, by uniformization."""
    # A tagged caller with j ahead moves to j−1 (or to an agent from j = 0) at rate Nμ + jθ
    # and abandons at rate θ.  Push the distribution over j through the uniformized jump
    # chain and weight the answered mass after m jumps by P(Poisson(Λt) = m).
    k = len(probs) - 1
    mt = lam_u * t
    log_mt = math.log(mt)
    adv = [(nmu + j * theta) / lam_u for j in range(k + 1)]
    stay = [1.0 - (nmu + (j + 1) * theta) / lam_u for j in range(k + 1)]
    adv_up = [*adv[1:], 0.0]  # inflow into j from j+1
    v = probs
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


def _served_closed_form(logs: list[float], log_total: float, p_wait: float, lam: float,
                        nmu: float, theta: float, t: float) -> float:
    """The same Σ_j π_{N+j}·G_j(t) in O(J) from incomplete-gamma identities (exact)."""
    # With x = Nμ/θ, y = λ/θ, f = e^{−θt}, the waiting arrivals' sum is
    # P_w·[γ(x+1, y) − γ(x+1, yf)] / (y·γ(x, y)); expanding both γ series in the chain
    # weights w_k gives (Nμ/λ)·[Σ_{k≥1} w_k − e^{y(1−f) − xθt}·Σ_{k≥1} w_k f^k] / Σπ.
    ft = theta * t
    log_e = -(lam / theta) * math.expm1(-ft) - nmu * t - log_total
    late = sum(math.exp(lw + log_e - k * ft) for k, lw in enumerate(logs) if k)
    return max(0.0, nmu / lam * (p_wait - math.exp(-log_total) - late))


def _a_theta_limit(n: int, lam: float, aht: float, tau: float, t: float) -> ErlangAResult:
    """Long-patience limit for chains too long to sum: Erlang C P(wait) and SL, Gaussian queue."""
    # Near the mode, w_j ≈ exp(−(j − (y − x))²/(2y)) with y = λτ, x = Nμτ (y, x ≫ 1 here),
    # so the queue given waiting is that Gaussian restricted to j >= 0.
    c = erlang_c_metrics(n, lam, aht, t)  # θ → 0: P(wait) and SL (0 when N <= A)
    m, s = (lam - n / aht) * tau, math.sqrt(lam * tau)
    kept = 0.5 * math.erfc(-m / s / math.sqrt(2))  # Φ(m/s): the share of the Gaussian at j >= 0
    if kept > 0:
        lq = c.p_wait * (m + s * math.exp(-0.5 * (m / s) ** 2) / math.sqrt(2 * math.pi) / kept)
    else:  # far below the cap in practice; Erlang C's queue is then the right limit
        lq = c.asa_s * lam
    p_ab = min(1.0, lq / (lam * tau))  # P(ab) = θ·L_q/λ
    return ErlangAResult(n, c.traffic_erlangs, c.p_wait, c.service_level, p_ab, lq / lam,
                         min(1.0, c.traffic_erlangs * (1.0 - p_ab) / n))


def erlang_a_metrics(n: int, arrival_rate_per_s: float, aht_s: float, patience_s: float,
                     threshold_s: float) -> ErlangAResult:
    """SL(T), P(abandon), P(wait), E[W], occupancy under Erlang A; 0.1-0.6 ms, ≤ ~5 ms."""
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
    theta, nmu = 1.0 / tau, n / aht
    b = erlang_b(n, a)  # π_N / Σ_{k<=N} π_k: the Poisson part below N, without factorials
    if b == 0.0:  # P(all busy) underflowed (< 1e-308): waiting is negligible
        return ErlangAResult(n, a, 0.0, 1.0, 0.0, 0.0, a / n)
    # when the queue's mode alone is past the cap, do not even start summing
    deep = (lam - nmu) * tau > _MAX_QUEUE_STATES
    chain = None if deep else _queue_log_weights(lam, nmu, theta)
    if chain is None:
        return _a_theta_limit(n, lam, aht, tau, t)
    logs, log_q, log_l = chain
    log_below = math.log1p(-b) - math.log(b) if b < 1 else -math.inf  # Σ_{k<N} π_k / π_N
    hi = max(log_below, log_q)
    log_total = hi + math.log(math.exp(log_below - hi) + math.exp(log_q - hi))
    p_wait = math.exp(log_q - log_total)
    lq = math.exp(log_l - log_total)
    p_ab = min(1.0, theta * lq / lam)  # abandonment flow θ·L_q over arrivals λ
    late = 0.0
    if nmu * t > 1e-300:  # else no agent frees up within t (and log(Λt) would fail)
        k, m_max, lam_u = _uniformization_size(len(logs) - 1, nmu, theta, t)
        if m_max * (k + 17) <= _UNIFORMIZATION_BUDGET:
            probs = [math.exp(x - log_total) for x in logs[: k + 1]]
            late = _served_within(probs, nmu, theta, t, m_max, lam_u)
        else:
            late = _served_closed_form(logs, log_total, p_wait, lam, nmu, theta, t)
    sl = min(1.0, math.exp(log_below - log_total) + late)
    return ErlangAResult(n, a, p_wait, sl, p_ab, lq / lam, min(1.0, a * (1.0 - p_ab) / n))


def _staffing(agents: int | None, model: Model, a: float, n: int,
              m: ErlangCResult | ErlangAResult) -> StaffingResult:
    """Flatten either model's metrics into a StaffingResult."""
    if isinstance(m, ErlangCResult):
        wait, p_ab = m.asa_s, 0.0
    else:
        wait, p_ab = m.mean_wait_s, m.p_abandon
    return StaffingResult(agents, agents is not None, model, a, n, m.service_level, m.p_wait,
                          wait, p_ab, m.occupancy)


def agents_needed(arrival_rate_per_s: float, aht_s: float, threshold_s: float,
                  target_sl: float, patience_s: float | None = None,
                  max_occupancy: float = 1.0, max_agents: int = 1000) -> StaffingResult:
    """Smallest N meeting SL and occupancy targets; C O(N) ≤ 25 µs, A ~7 evaluations ≤ 3 ms."""
    lam = _number("arrival_rate_per_s", arrival_rate_per_s)
    aht = _number("aht_s", aht_s, positive=True)
    t = _number("threshold_s", threshold_s)
    target = _number("target_sl", target_sl)
    occ_cap = _number("max_occupancy", max_occupancy, positive=True)
    _agents_arg(max_agents)
    max_agents = min(max_agents, MAX_AGENTS)
    if target > 1 or occ_cap > 1:
        raise ValueError("target_sl and max_occupancy must be at most 1")
    tau = None if patience_s is None else _number("patience_s", patience_s, positive=True,
                                                  allow_inf=True)
    model: Model = "erlang_c" if tau is None or math.isinf(tau) else "erlang_a"
    a = _traffic(lam * aht)
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
        m = _c_metrics(max_agents, a, aht, t, erlang_b(max_agents, a))
        return _staffing(None, "erlang_c", a, max_agents, m)
    b = erlang_b(n, a)
    while True:
        m = _c_metrics(n, a, aht, t, b)
        if m.service_level >= target:
            return _staffing(n, "erlang_c", a, n, m)
        if n >= max_agents:
            return _staffing(None, "erlang_c", a, n, m)
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
    guess = _search_c(a, aht, t, target, max(math.floor(a) + 1, lo), max_agents)
    good = min(max(guess.evaluated_agents, lo), max_agents)  # Erlang C's answer as a start
    bad, step = lo - 1, 1  # below lo is known to fail, so it is never evaluated
    if not ok(good):
        while True:  # gallop upwards
            bad, good = good, min(good + step, max_agents)
            if ok(good):
                break
            if good == max_agents:
                return _staffing(None, "erlang_a", a, good, cache[good])
            step *= 2
    while good - bad > 1:  # invariant: ok(good) and not ok(bad)
        mid = (bad + good) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return _staffing(good, "erlang_a", a, good, cache[good])
