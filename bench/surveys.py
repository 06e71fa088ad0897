"""Benchmark: survey revisions in the fold, signature checks, and signed webhooks end to end."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from benchio import write_report

from wallboard.config.settings import parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Pipeline
from wallboard.model.events import parse_event
from wallboard.server.app import create_app

# A large contact centre gets a survey answer every few seconds; 100/s is a wide margin.
TARGET_REQUESTS_PER_S = 100
T0 = 1_795_000_000.0
SECRET = "bench-typeform-secret"
CONFIG: dict[str, Any] = {
    "site": {"name": "Bench", "timezone": "UTC", "min_survey_sample": 1},
    "queues": {"sales": {}, "support": {}},
    "sources": {
        "hook": {"type": "webhook", "token": "bench-token-123"},
        "tf": {"type": "typeform", "secret": SECRET,
               "surveys": {"F1": {"questions": {"csat": {"kind": "csat"}},
                                  "fields": {"queue": "queue", "agent": "agent"}}}}},
}


def fold_rate(events: int, revise_share: float, with_ids: bool) -> float:
    """Survey events folded per CPU second; `revise_share` of them revise an earlier response."""
    rng = random.Random(1)
    clock = [T0]
    settings = parse_settings(CONFIG, "<bench>")
    pipeline = Pipeline(Aggregator(settings, clock=lambda: clock[0]))
    parsed = []
    responses = 0
    for i in range(events):
        if responses and rng.random() < revise_share:
            rid = rng.randrange(responses)
        else:
            rid, responses = responses, responses + 1
        raw = {"type": "survey.response", "id": f"e{i}", "ts": T0 + i * 0.01,
               "queue": rng.choice(("sales", "support")), "agent": f"a{rng.randrange(50)}",
               "kind": "csat", "score": rng.randint(1, 5)}
        if with_ids:
            raw["response_id"] = f"r{rid}"
        parsed.append(parse_event(raw, "bench"))
    # The prepared events stay out of the collector's scans: a server does not hold them.
    gc.collect()
    gc.freeze()
    started = time.process_time()
    for event in parsed:
        clock[0] = event.ts
        pipeline.ingest(event)
    elapsed = time.process_time() - started
    gc.unfreeze()
    return events / elapsed


def verify_cost_us(body_bytes: int, rounds: int) -> dict[str, float]:
    """Microseconds per signature check of each scheme, over a body of `body_bytes`."""
    from wallboard_plugins.surveys.delighted import verify_signature as delighted
    from wallboard_plugins.surveys.surveymonkey import SurveyMonkeyConfig, compute
    from wallboard_plugins.surveys.surveymonkey import verify_signature as surveymonkey
    from wallboard_plugins.surveys.typeform import verify_signature as typeform

    body = os.urandom(body_bytes)
    tf = "sha256=" + base64.b64encode(hmac.new(SECRET.encode(), body,
                                               hashlib.sha256).digest()).decode()
    dl = "sha256=" + hmac.new(b"dlkey123", body, hashlib.sha256).hexdigest()
    sm_config = SurveyMonkeyConfig.model_validate({
        "type": "surveymonkey", "api_key": "KEY1", "api_secret": "SECRET12",
        "access_token": "token123", "surveys": {"1": {"questions": {"q": {"kind": "csat"}}}}})
    sm = {"Sm-Signature": compute("KEY1", "SECRET12", body), "Sm-Apikey": "KEY1"}
    checks = {"typeform": lambda: typeform(SECRET, body, tf),
              "delighted": lambda: delighted("dlkey123", body, dl),
              "surveymonkey": lambda: surveymonkey(sm_config, body, sm)}
    out = {}
    for name, check in checks.items():
        started = time.perf_counter()
        for _ in range(rounds):
            check()
        out[name] = round((time.perf_counter() - started) / rounds * 1e6, 2)
    return out


def typeform_request(i: int, now: float) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"event_id": f"E{i}", "event_type": "form_response", "form_response": {
        "form_id": "F1", "token": f"t{i}", "submitted_at": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "hidden": {"queue": "sales", "agent": f"a{i % 50}"},
        "answers": [{"type": "number", "number": 1 + i % 5,
                     "field": {"id": "x", "type": "rating", "ref": "csat"}}]}})
    signature = "sha256=" + base64.b64encode(hmac.new(SECRET.encode(), body,
                                                      hashlib.sha256).digest()).decode()
    return body, {"Typeform-Signature": signature, "Content-Type": "application/json"}


def plain_request(i: int, now: float) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"type": "survey.response", "id": f"p{i}", "ts": now, "queue": "sales",
                         "kind": "csat", "score": 1 + i % 5})
    return body, {"Authorization": "Bearer bench-token-123",
                  "Content-Type": "application/json"}


async def http_rate(requests: int, concurrency: int) -> dict[str, dict[str, float]]:
    """Requests/s and latency of signed Typeform posts and plain webhook posts (202 each)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = {**CONFIG, "journal": {"data_dir": tmp}}
        server = TestServer(create_app(parse_settings(config, "<bench>")), host="127.0.0.1",
                            port=0)
        await server.start_server()
        out = {}
        try:
            async with aiohttp.ClientSession() as http:
                for name, path, make in (("typeform", "/api/surveys/tf", typeform_request),
                                         ("webhook", "/api/events", plain_request)):
                    latencies: list[float] = []
                    queue = list(range(requests))

                    async def worker(path: str = path, make: Any = make,
                                     latencies: list[float] = latencies,
                                     queue: list[int] = queue) -> None:
                        while queue:
                            body, headers = make(queue.pop(), time.time())
                            sent = time.perf_counter()
                            async with http.post(f"http://127.0.0.1:{server.port}{path}",
                                                 data=body, headers=headers) as resp:
                                assert resp.status == 202, await resp.text()
                            latencies.append(time.perf_counter() - sent)

                    started = time.perf_counter()
                    await asyncio.gather(*(worker() for _ in range(concurrency)))
                    elapsed = time.perf_counter() - started
                    latencies.sort()
                    out[name] = {
                        "requests_per_s": round(requests / elapsed, 1),
                        "p50_ms": round(statistics.median(latencies) * 1000, 2),
                        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}
        finally:
            await server.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements, print them with ratios, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="survey events folded")
    parser.add_argument("--requests", type=int, default=2000, help="HTTP requests per kind")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "surveys.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.requests = 20_000, 200
    started = time.perf_counter()
    report: dict[str, Any] = {"load_average_at_start": round(os.getloadavg()[0], 2),
                              "python": sys.version.split()[0]}
    plain = fold_rate(args.events, 0.0, with_ids=False)
    fresh = fold_rate(args.events, 0.0, with_ids=True)
    revised = fold_rate(args.events, 0.5, with_ids=True)
    report["fold_events_per_cpu_s"] = {"no_response_id": round(plain),
                                       "response_id_fresh": round(fresh),
                                       "half_revisions": round(revised)}
    print(f"fold, {args.events:,} survey events, one core (events per CPU second):")
    print(f"  without response_id {plain:>10,.0f}")
    print(f"  with response_id    {fresh:>10,.0f}   ratio {fresh / plain:.2f}x")
    print(f"  half are revisions  {revised:>10,.0f}   ratio {revised / plain:.2f}x "
          "(each takes the earlier revision back, then counts)")
    report["verify_us"] = {f"{size}B": verify_cost_us(size, 2000 if size < 10_000 else 200)
                           for size in (1024, 262_144)}
    for size, costs in report["verify_us"].items():
        print(f"signature check, {size} body (µs): " +
              ", ".join(f"{k} {v}" for k, v in costs.items()))
    http = asyncio.run(http_rate(args.requests, args.concurrency))
    report["http"] = http
    for name, figures in http.items():
        print(f"HTTP {name:8} {args.requests} requests, {args.concurrency} concurrent, 202 "
              f"after the journal commit: {figures['requests_per_s']:,.0f} req/s, p50 "
              f"{figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    ratio = http["typeform"]["requests_per_s"] / TARGET_REQUESTS_PER_S
    print(f"  typeform vs plain webhook: "
          f"{http['typeform']['requests_per_s'] / http['webhook']['requests_per_s']:.2f}x")
    print(f"  TARGET >= {TARGET_REQUESTS_PER_S} signed survey webhooks/s: ratio {ratio:.2f}x")
    report["target_requests_per_s"] = TARGET_REQUESTS_PER_S
    report["target_ratio"] = round(ratio, 2)
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
