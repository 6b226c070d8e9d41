"""The errors of the twin's Elastic Load Balancing, named after the ELBv2 errors.

    try:
        await elb.start()
    except ListenerAddressInUse as err:  # also an OSError
        print(err)  # "127.0.0.1:8443 (listener HTTPS:443 of load balancer public) is in use ..."

`fargo.local.elb.load_balancing` re-exports them; every one is an `ElbError`.
"""

from __future__ import annotations


class ElbError(Exception):
    """Base of the errors the twin's load balancers raise; named after the ELBv2 errors."""


class TargetGroupNotFound(ElbError, LookupError):
    pass


class ValidationError(ElbError, ValueError):
    """The load balancer configuration cannot run (missing address or certificate)."""


class ListenerAddressInUse(ElbError, OSError):
    """A listener's local address is taken by another process."""
