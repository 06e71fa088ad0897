"""Latency bench, the figures: percentiles of each phase, the targets, and what is printed."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from benchio import figure
from latency_stats import latency_pairs, pct, weighted_percentiles

IDLE_TARGET_MS = 30.0  # an isolated event on an idle server, p50
POST_TARGET_MS = 50.0  # POST round trip p99 under load
BARE_FACTOR = 1.5  # p99 <= push interval + this x the bare broadcast's p99
TARGET_CLIENTS = 1000
TARGET_RATE = 1000
QS = (0.5, 0.95, 0.99, 1.0)


def ms(values: dict[float, float]) -> dict[str, float]:
    """Percentiles in seconds as {p50: ms, ..., max: ms}."""
    return {f"p{round(q * 100)}" if q < 1 else "max": round(1000 * v, 1)
            for q, v in values.items()}


def bare_figures(results: list[dict[str, Any]], go: float, stop: float) -> dict[str, Any]:
    """Broadcast-to-client latency of the bare run: receive time minus the broadcast's start."""
    pairs = [(received - built, 1.0) for w in results for c in w["clients"]
             for _, received, built in c["changes"]
             if built is not None and go <= received <= stop]
    clients = [c for w in results for c in w["clients"]]
    return {"latency_ms": ms(weighted_percentiles(pairs, QS)), "messages": len(pairs),
            "clients_connected": sum(c["connected"] for c in clients),
            "clients_closed_early": sum(c["closed_early"] for c in clients),
            "client_loop_lag_ms": [w["loop_lag_ms"] for w in results]}


def phase_latency(results: list[dict[str, Any]], batches: list[tuple[int, float]],
                  skip: int = 0) -> dict[str, Any]:
    """Event-to-client latency over (client, event) pairs, split at the server's build."""
    pairs: list[tuple[float, float]] = []
    to_build: list[tuple[float, float]] = []
    from_build: list[tuple[float, float]] = []
    missing = 0
    for client in (c for w in results for c in w["clients"]):
        if not client["connected"]:
            continue
        found, lost = latency_pairs(client["changes"], batches, skip)
        missing += lost
        for latency, weight, build in found:
            pairs.append((latency, weight))
            if build is not None:
                to_build.append((build, weight))
                from_build.append((latency - build, weight))
    if missing:
        pairs.append((math.inf, missing))
    return {"pairs": int(sum(w for _, w in pairs)), "pairs_missing": missing,
            "latency_ms": ms(weighted_percentiles(pairs, QS)),
            "send_to_server_build_ms": ms(weighted_percentiles(to_build, QS)),
            "server_build_to_client_ms": ms(weighted_percentiles(from_build, QS))}


def rtt_ms(rtts: list[float]) -> dict[str, float]:
    """Round trips in seconds as p50/p99/max in ms."""
    rtts = sorted(rtts)
    return {"p50": round(1000 * pct(rtts, 0.5), 2), "p99": round(1000 * pct(rtts, 0.99), 2),
            "max": round(1000 * (rtts[-1] if rtts else 0), 2)}


def summary(r: dict[str, Any], interval_ms: float, clients: int, rate: int) -> dict[str, Any]:
    """The acceptance figures, flat, with their floor, ratio and targets."""
    bare = r["bare"]["latency_ms"]["p99"]
    p50, p99 = r["latency_ms"]["p50"], r["latency_ms"]["p99"]
    target = interval_ms + BARE_FACTOR * bare
    idle = r["idle"]["latency_ms"]["p50"]
    post = r["post_rtt_ms"]["p99"]
    at_load = clients >= TARGET_CLIENTS and rate >= TARGET_RATE
    return {
        "clients": clients, "events_per_s": rate, "push_interval_ms": interval_ms,
        "at_target_load": at_load,
        "bare_broadcast_p50_ms": r["bare"]["latency_ms"]["p50"], "bare_broadcast_p99_ms": bare,
        "event_to_client_p50_ms": p50, "event_to_client_p99_ms": p99,
        # What the server adds beyond the coalescing interval, in bare-broadcast p99s.
        "ratio_excess_p99_to_bare_p99": round((p99 - interval_ms) / bare, 2) if bare else None,
        "target_p99_ms": round(target, 1), "p99_target_met": p99 <= target,
        "idle_event_p50_ms": idle, "idle_event_p99_ms": r["idle"]["latency_ms"]["p99"],
        "idle_target_ms": IDLE_TARGET_MS, "idle_target_met": idle <= IDLE_TARGET_MS,
        "post_rtt_p99_ms": post, "post_target_ms": POST_TARGET_MS,
        "post_target_met": post <= POST_TARGET_MS,
        "load_average": r["load_average"],
    }


def add_figures(r: dict[str, Any]) -> None:
    """The headline figures as `r["figures"]` (benchio.figure), what bench/report.py reads."""
    f = r["summary"]
    load = f"{f['clients']:,} TVs at {f['events_per_s']:,} events/s"
    # Beyond the push interval (the coalescing the server is asked to do), so that the ratio
    # to the bare broadcast's p99 is the one the target is about.
    figure(r, f"fan-out p99 event→client beyond the {f['push_interval_ms']:g} ms interval, "
              f"{load}", f["event_to_client_p99_ms"] - f["push_interval_ms"], "ms",
           floor=f["bare_broadcast_p99_ms"], floor_name="bare websockets broadcast p99",
           target=f"≤ {BARE_FACTOR:g}× (p99 {f['event_to_client_p99_ms']:g} ms ≤ "
                  f"{f['target_p99_ms']:g} ms)",
           met=f["p99_target_met"] if f["at_target_load"] else None)
    figure(r, f"idle single event → {f['clients']:,} TVs, p50", f["idle_event_p50_ms"], "ms",
           floor=f["bare_broadcast_p50_ms"], floor_name="bare websockets broadcast p50",
           target=f"≤ {IDLE_TARGET_MS:g} ms", met=f["idle_target_met"])
    figure(r, f"POST round trip p99, {load}", f["post_rtt_p99_ms"], "ms",
           target=f"≤ {POST_TARGET_MS:g} ms",
           met=f["post_target_met"] if f["at_target_load"] else None)


def print_profile(path: Path, limit: int = 30) -> list[str]:
    """Print the top of a cProfile dump by own time and by cumulative time."""
    import io
    import pstats

    lines: list[str] = []
    for order in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).strip_dirs().sort_stats(order).print_stats(limit)
        text = buf.getvalue()
        text = text[text.find("   ncalls"):] if "   ncalls" in text else text
        print(f"server profile, top {limit} by {order}:\n{text}")
        lines.append(text)
    return lines


def print_report(r: dict[str, Any]) -> None:
    """Print the details of both runs, then the figures against their targets."""
    b = r["bare"]
    print(f"bare broadcast: {b['clients_connected']} clients (closed early "
          f"{b['clients_closed_early']}), {b['messages']:,} messages: p50 "
          f"{b['latency_ms']['p50']} ms p99 {b['latency_ms']['p99']} ms max "
          f"{b['latency_ms']['max']} ms; client loop lag {b['client_loop_lag_ms']}; CPU (% of "
          f"one core) server {b['cpu_pct_of_one_core']['server']}, clients "
          f"{b['cpu_pct_of_one_core']['clients']}, other processes "
          f"{b['cpu_pct_of_one_core']['other_processes']}")
    for name, run in (("bare broadcast", b), ("wallboard", r)):
        if run["clients_connected"] < run["clients_requested"]:
            print(f"WARNING: {name}: only {run['clients_connected']} of "
                  f"{run['clients_requested']} clients connected: not the load asked for")
    lat = r["latency_ms"]
    print(f"wallboard: clients connected {r['clients_connected']}/{r['clients_requested']} "
          f"(server gauge {r['server_ws_clients_metric']}, dropped "
          f"{r['server_ws_dropped_metric']}, closed early {r['clients_closed_early']})")
    print(f"events sent {r['events_sent']:,} = {r['events_per_s_sent']:,.0f}/s in "
          f"{r['batches']} batches; POST errors {r['post_errors']}; POST round trip p50 "
          f"{r['post_rtt_ms']['p50']} ms p99 {r['post_rtt_ms']['p99']} ms max "
          f"{r['post_rtt_ms']['max']} ms; journal commit mean {r['journal_commit_mean_ms']} ms")
    print(f"messages received {r['messages_received']:,}; {r['messages_per_s']:,.0f}/s while "
          f"sending ({r['snapshots_received']} full snapshots, {r['sequence_gaps']} sequence "
          f"gaps), {r['bytes_per_s'] / 1e6:.2f} MB/s of JSON, {r['bytes_per_message']:,.0f} "
          f"bytes per message")
    print(f"event-to-client latency over {r['pairs']:,} (client, event) pairs "
          f"({r['pairs_missing']} never seen): p50 {lat['p50']} ms  p95 {lat['p95']} ms  "
          f"p99 {lat['p99']} ms  max {lat['max']} ms")
    s, c = r["send_to_server_build_ms"], r["server_build_to_client_ms"]
    print(f"  split at the server's snapshot build (meta.ts): send->build p50 {s['p50']} p99 "
          f"{s['p99']} max {s['max']} ms | build->client p50 {c['p50']} p99 {c['p99']} max "
          f"{c['max']} ms")
    i = r["idle"]
    print(f"idle: {i['events']} isolated events, {i['pairs']:,} pairs ({i['pairs_missing']} "
          f"never seen): p50 {i['latency_ms']['p50']} ms p99 {i['latency_ms']['p99']} ms; "
          f"send->build p50 {i['send_to_server_build_ms']['p50']} ms (the POST, the journal's "
          f"commit, the fold), build->client p50 {i['server_build_to_client_ms']['p50']} ms; "
          f"POST round trip p50 {i['post_rtt_ms']['p50']} ms")
    cpu = r["cpu_pct_of_one_core_while_sending"]
    print(f"CPU while sending (% of one core): server {cpu['server']}, clients {cpu['clients']}, "
          f"sender {cpu['sender']}, other processes {cpu['other_processes']}; machine busy "
          f"{cpu['machine_busy_cores_pct']} of {cpu['machine_cores'] * 100:.0f}")
    print(f"client process loop lag {r['client_loop_lag_ms']}; load average "
          f"{r['load_average']}")
    for name, value in r.get("server_probe", {}).items():
        print(f"  server probe {name}: {value}")
    if cpu["other_processes"] > 25:
        print(f"WARNING: other processes used {cpu['other_processes']:.0f}% of a core while "
              f"sending (of {cpu['machine_cores'] * 100:.0f}%): these figures include "
              f"contention from outside the benchmark")
    f = r["summary"]
    load = "" if f["at_target_load"] else (
        f" (at {f['clients']} clients, {f['events_per_s']} events/s: not the target load of "
        f"{TARGET_CLIENTS} clients at {TARGET_RATE} events/s)")

    def verdict(met: bool) -> str:
        return "MET" if met else "MISSED"

    print(f"{'figure':<36}{'value':>10}{'floor':>10}{'ratio':>8}  target")
    print(f"{'fan-out p99 event->client (ms)':<36}{f['event_to_client_p99_ms']:>10}"
          f"{f['bare_broadcast_p99_ms']:>10}{f['ratio_excess_p99_to_bare_p99']!s:>8}  "
          f"<= {f['push_interval_ms']:g} + {BARE_FACTOR:g} x bare p99 = {f['target_p99_ms']} ms")
    print(f"{'fan-out p50 event->client (ms)':<36}{f['event_to_client_p50_ms']:>10}"
          f"{f['bare_broadcast_p50_ms']:>10}{'':>8}  -")
    print(f"{'idle single event p50 (ms)':<36}{f['idle_event_p50_ms']:>10}"
          f"{f['bare_broadcast_p50_ms']:>10}{'':>8}  <= {IDLE_TARGET_MS:g} ms (floor: bare p50)")
    print(f"{'POST round trip p99 at load (ms)':<36}{f['post_rtt_p99_ms']:>10}{'':>10}{'':>8}  "
          f"<= {POST_TARGET_MS:g} ms")
    print(f"TARGET fan-out p99 <= interval + {BARE_FACTOR:g} x bare p99: "
          f"{verdict(f['p99_target_met'])}; idle p50 <= {IDLE_TARGET_MS:g} ms: "
          f"{verdict(f['idle_target_met'])}; POST p99 <= {POST_TARGET_MS:g} ms: "
          f"{verdict(f['post_target_met'])}{load}; load average {os.getloadavg()[0]:.2f}")
