"""``GET /metrics``: Prometheus text format, read from the database at scrape time, so
every process (API nodes and workers alike) answers the same figures."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kopilka.core.config import get_settings
from kopilka.core.db import get_db
from kopilka.core.errors import Problem
from kopilka.core.jobs import job_runs
from kopilka.events.queries import events_written
from kopilka.webhooks import queries as webhook_queries
from kopilka.webhooks import service as webhooks

router = APIRouter(tags=["metrics"])

STATUSES = ("pending", "delivered", "dead")
OUTCOMES = ("success", "http_error", "timeout", "network_error")


class OutboxCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        with get_db().session() as s:
            by_status = webhook_queries.deliveries_by_status(s)
            by_outcome = webhook_queries.attempts_by_outcome(s)
            endpoints = webhook_queries.endpoints_by_active(s)
            events = events_written(s)
            lag = webhooks.lag_seconds(s)
            jobs = job_runs(s)
        yield GaugeMetricFamily(
            "kopilka_outbox_lag_seconds",
            "Age of the oldest event not yet delivered to an active endpoint",
            value=lag,
        )
        yield GaugeMetricFamily(
            "kopilka_outbox_pending",
            "Deliveries waiting to be sent (or retried)",
            value=float(by_status.get("pending", 0)),
        )
        yield CounterMetricFamily(
            "kopilka_outbox_events", "Domain events written", value=float(events)
        )
        deliveries = GaugeMetricFamily(
            "kopilka_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        for status in STATUSES:
            deliveries.add_metric([status], float(by_status.get(status, 0)))
        yield deliveries
        attempts = CounterMetricFamily(
            "kopilka_webhook_attempts", "Delivery attempts by outcome", labels=["outcome"]
        )
        for outcome in OUTCOMES:
            attempts.add_metric([outcome], float(by_outcome.get(outcome, 0)))
        yield attempts
        active = GaugeMetricFamily(
            "kopilka_webhook_endpoints", "Webhook endpoints by state", labels=["state"]
        )
        active.add_metric(["active"], float(endpoints.get(True, 0)))
        active.add_metric(["disabled"], float(endpoints.get(False, 0)))
        yield active
        runs = CounterMetricFamily("kopilka_job_runs", "Scheduled job runs", labels=["job"])
        failing = GaugeMetricFamily(
            "kopilka_job_last_run_failed", "1 if the job's last run failed", labels=["job"]
        )
        last = GaugeMetricFamily(
            "kopilka_job_last_run_timestamp_seconds",
            "When the job last finished (Unix time)",
            labels=["job"],
        )
        for j in jobs:
            runs.add_metric([j.name], float(j.runs))
            failing.add_metric([j.name], 1.0 if (j.last_result or "").startswith("failed") else 0)
            if j.last_finished_at is not None:
                last.add_metric([j.name], j.last_finished_at.timestamp())
        yield runs
        yield failing
        yield last


_registry = CollectorRegistry(auto_describe=False)
_registry.register(OutboxCollector())


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    token = get_settings().metrics_token
    given = request.headers.get("authorization", "")
    if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Problem(401, "unauthorized", "send Authorization: Bearer <metrics token>")
    return Response(generate_latest(_registry), media_type=CONTENT_TYPE_LATEST)
