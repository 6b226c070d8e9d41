"""The seven demonstration points, checked against a running system: the twin or AWS.

    points = await run_points(spec, world, calls=20)
    print(render(points))

`fargo.demo.points` makes the requests every world answers the same way (the public
HTTPS listener, the reference routes, a request per listener rule, the TLS handshake);
a `fargo.demo.world.World` gives what only that world knows: how its tasks pulled their
images (point 1), what its discovery names resolve to (point 5), which task logged a
request (point 6). `fargo.local.demo` is the twin's world, `fargo.cloud.demo` AWS's.
"""
