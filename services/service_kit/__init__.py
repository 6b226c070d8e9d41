"""Shared plumbing for the fargo demo services.

- :mod:`service_kit.asgi` — minimal ASGI router, request and response types;
- :mod:`service_kit.accesslog` — one cheap JSON log line per request;
- :mod:`service_kit.downstream` — the pooled, balancing client for service calls;
- :mod:`service_kit.http_pool` — its keep-alive pool (aiohttp), imported in the background;
- :mod:`service_kit.call_failures` — why a call got no answer, as the pool says it;
- :mod:`service_kit.otel` — the OpenTelemetry tracing API, its spans sent as X-Ray segments;
- :mod:`service_kit.xray_document` — a span's X-Ray segment document;
- :mod:`service_kit.xray_propagator` — ``X-Amzn-Trace-Id`` as an OpenTelemetry propagator;
- :mod:`service_kit.xray_middleware` — a server span per request;
- :mod:`service_kit.xray` — X-Ray's ids, trace header, sampling rule and daemon address;
- :mod:`service_kit.settings` — environment variables, with clear errors;
- :mod:`service_kit.server` — uvicorn (uvloop + httptools), graceful SIGTERM.

Import the submodules directly: the package itself imports nothing, so a
service that makes no downstream calls does not load aiohttp, and one that does
loads it while it already serves.
"""
