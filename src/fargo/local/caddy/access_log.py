"""Caddy's access logs: what each load balancer's listeners log per request, and where (pure).

    logging = access_logging(spec, directory=Path(".fargo/logs/lb-access"))
    # {"logs": {"alb-public": {"writer": {"output": "file", ...}, "include": [...]}}}
    server["logs"] = server_logs("public-443")
    prelude += entry_fields(forwarding=True)
    route["handle"] = [route_field(priority=3, action=action), handler]

Each listener (a Caddy server) logs to its own logger, ``http.log.access.<server>``;
each load balancer's loggers go to one file, ``<directory>/<load balancer>.json``, JSON
lines, rolled by Caddy at `ROLL_SIZE_MB` with `ROLL_KEEP` old files, so they stay
bounded.

The fields added to Caddy's entry (``log_append``, evaluated once the response is
written), read by `fargo.local.caddy.access_entries`:

- ``alb_route``: ``<priority>|<action>|<target group>,...`` of the rule that matched
  (priority 0: the default action, as ALB logs it);
- ``alb_target``, ``alb_target_status``, ``alb_target_latency``: the target that
  answered (``ip:port``), its status code and the seconds until its response
  headers; null when no target was asked;
- ``alb_trace_field``, ``alb_trace_id``, ``alb_trace_rest``: the ``X-Amzn-Trace-Id`` the
  load balancer forwarded is ``<field>=<id><rest>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fargo.local.caddy.forward import TRACE_FIELD, TRACE_ID, TRACE_REST
from fargo.spec.elb import Action
from fargo.spec.model import Spec

JSON = dict[str, Any]

ACCESS_LOGGER = "http.log.access"
ROLL_SIZE_MB = 16
ROLL_KEEP = 2
SUFFIX = ".json"

ROUTE_FIELD = "alb_route"
TARGET_FIELD = "alb_target"
TARGET_STATUS_FIELD = "alb_target_status"
TARGET_LATENCY_FIELD = "alb_target_latency"
TRACE_ID_FIELDS = ("alb_trace_field", "alb_trace_id", "alb_trace_rest")


def server_logger(server: str) -> str:
    """The logger a Caddy server (``<load balancer>-<port>``) writes its access log to."""
    return f"{ACCESS_LOGGER}.{server}"


def access_log_path(directory: Path, load_balancer: str) -> Path:
    return directory / f"{load_balancer}{SUFFIX}"


def access_logging(spec: Spec, *, directory: Path) -> JSON:
    """Caddy's ``logging`` part: one log per load balancer, its listeners' access loggers."""
    logs: JSON = {}
    for name, lb in spec.load_balancers.items():
        logs[f"alb-{name}"] = {
            "writer": {
                "output": "file",
                "filename": str(access_log_path(directory, name)),
                "roll_size_mb": ROLL_SIZE_MB,
                "roll_keep": ROLL_KEEP,
                "roll_gzip": False,
                "mode": "0600",
            },
            # Plain JSON: Caddy's filter encoder (to leave the headers out) costs the
            # request more than the bytes it saves (bench/access_log_bench.py).
            "encoder": {"format": "json"},
            "include": [server_logger(f"{name}-{listener.port}") for listener in lb.listeners],
        }
    return {"logs": logs}


def server_logs(server: str) -> JSON:
    """A Caddy server's ``logs``: its access log goes to `server_logger` (``server``)."""
    return {"default_logger_name": server}


def entry_fields(*, forwarding: bool) -> list[JSON]:
    """``log_append`` handlers every request passes first (they add after the response)."""
    fields = {
        TARGET_FIELD: "{http.reverse_proxy.upstream.hostport}",
        TARGET_STATUS_FIELD: "{http.reverse_proxy.status_code}",
        TARGET_LATENCY_FIELD: "{http.reverse_proxy.upstream.latency}",
    }
    if forwarding:
        # The parts of the header `fargo.local.caddy.forward` sends to the target
        # (``log_append`` takes one placeholder per field): ``<field>=<id><rest>``.
        for key, placeholder in zip(
            TRACE_ID_FIELDS, (TRACE_FIELD, TRACE_ID, TRACE_REST), strict=True
        ):
            fields[key] = "{" + placeholder + "}"
    return [{"handler": "log_append", "key": key, "value": value} for key, value in fields.items()]


def route_field(priority: int, action: Action) -> JSON:
    """The ``log_append`` handler that names the rule a request matched and its action."""
    if action.redirect is not None:
        kind, groups = "redirect", ""
    elif action.fixed_response is not None:
        kind, groups = "fixed-response", ""
    else:
        kind = "forward"
        groups = ",".join(w.target_group for w in action.weighted_target_groups())
    return {"handler": "log_append", "key": ROUTE_FIELD, "value": f"{priority}|{kind}|{groups}"}
