"""Load balancer DNS names in the twin, shaped like ELB's.

lb_dns_name(spec, "internal")  # "internal-fargo-demo-internal.us-east-1.elb.fargo.internal"
"""

from __future__ import annotations

from fargo.spec import Spec

ZONE = "elb.fargo.internal"


def lb_dns_name(spec: Spec, name: str) -> str:
    """A load balancer's DNS name in the twin's ``elb.fargo.internal`` zone."""
    scheme = spec.load_balancers[name].scheme
    prefix = "internal-" if scheme == "internal" else ""
    return f"{prefix}{spec.name}-{name}.{spec.region}.{ZONE}"
