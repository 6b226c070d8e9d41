"""The twin's console: a read-only HTTP API on loopback for the demo page (the dashboard).

`fargo.local.console.server.Console` serves, on 127.0.0.1 only:

    GET  /api                which optional sources (metrics, traces, map) this twin has
    GET  /api/architecture   the spec drawn with live state (`architecture`)
    GET  /api/status         the twin's status (`fargo.local.status.TwinStatus`)
    GET  /api/points         the seven demonstration points, run against the twin (cached)
    GET  /api/events         recent events, scaling activities marked (`events`)
    GET  /api/metrics        metrics, traces and the service map, when the runtime has
    GET  /api/traces         them (a `Source` in `Console.sources`); else 404 with a JSON
    GET  /api/traces/{id}    message
    GET  /api/service-map
    GET  /api/explain        ?route=: why a route fails, in words (`explain`)
    POST /api/burst          {route, count}: requests through the public listener (`burst`)

Nothing else changes anything. Browsers may call it only from the spec's internet-facing
load balancers' origins (the demo page), through CORS.
"""
