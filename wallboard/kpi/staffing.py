"""The live staffing tile: Erlang C/A forecasts from a window's numbers, None-safe."""

from __future__ import annotations

import math

from wallboard.kpi.erlang import (
    MAX_AGENTS,
    NotComputable,
    agents_needed,
    erlang_a_metrics,
    erlang_c_metrics,
)


def _usable(x: float | None) -> float | None:
    """A finite, non-negative float, or None for missing or garbage input."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):  # the annotation is a wish: sources may send anything
        return None
    return v if math.isfinite(v) and v >= 0 and not isinstance(x, bool) else None


def forecast(arrival_rate_per_s: float | None, aht_s: float | None, threshold_s: float | None,
             target_sl: float | None, staffed: int | None, patience_s: float | None = None,
             *, max_occupancy: float = 1.0, max_agents: int = 1000) -> dict[str, float | None]:
    """Staffing tile values named as in kpis.LIVE_KPIS; None-safe; ≲ 1 ms C, ≲ 5 ms A."""
    # Keys match LIVE_KPIS.  None means not computable (no arrivals or AHT yet, missing
    # inputs) or, for agents_needed, out of reach within max_agents.  forecast_wait_s is
    # inf when the staffed agents cannot keep up under Erlang C (orjson sends null).
    # Bounded: traffic past erlang.MAX_TRAFFIC_ERLANGS or more than erlang.MAX_AGENTS staffed
    # is not computed (None), so no input makes a snapshot wait on this.
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
        try:
            s = agents_needed(lam, aht, t, target, tau, occ, max(0, int(max_agents)))
        except NotComputable:
            return out
        out["agents_needed"] = s.agents
    staff = _usable(staffed)
    if staff is not None and staff <= MAX_AGENTS:
        if tau is None:
            c = erlang_c_metrics(int(staff), lam, aht, t)
            out.update(forecast_sl=c.service_level, forecast_wait_s=c.asa_s)
        else:
            m = erlang_a_metrics(int(staff), lam, aht, tau, t)
            out.update(forecast_sl=m.service_level, forecast_wait_s=m.mean_wait_s,
                       forecast_abandon=m.p_abandon)
    return out


def estimate_patience(mean_wait_all_s: float | None, p_abandon: float | None) -> float | None:
    """Rough mean patience τ ≈ E[W]/P(ab) from one window; None when not estimable."""
    # Exact for exponential patience in steady state (P(ab) = θ·E[W], E[W] over all arrivals
    # with abandoners' waits included).  Real patience is not exponential and a window is not
    # steady state, so treat the result as an order of magnitude; few abandons make it noisy.
    w, p = _usable(mean_wait_all_s), _usable(p_abandon)
    return w / p if w and p and p <= 1 else None
