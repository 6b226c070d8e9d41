"""Evidence the control plane gathers from inside the VPC, for ``fargo demo``.

A demonstration that needs to stand where the tasks stand — the route an image pull
took, what the registry saw, whether the internet side can open a private task, what a
task's DNS lookup answers — cannot be made from the host in VPC mode: the VPC is not
routed to it. The control plane can, and answers over its API:

    await image_pull_evidence(runtime)   # point 1
    await dns_evidence(runtime, "private.backend.microservice.local", queries=3)   # point 5
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dns.message
import dns.rdatatype

from fargo.local.ec2.vpc_mode import VpcNetwork
from fargo.local.ecs.task import TaskStatus

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

PROBE_TIMEOUT_SECONDS = 1.0


class NeedsVpcMode(LookupError):
    """The evidence only exists in VPC mode."""


def _vpc(runtime: Runtime) -> VpcNetwork:
    if not isinstance(runtime.network, VpcNetwork):
        raise NeedsVpcMode(
            f"the twin runs in {runtime.network.mode} mode; this needs VPC mode "
            "(`fargo up --network vpc`)"
        )
    return runtime.network


async def image_pull_evidence(runtime: Runtime) -> dict[str, Any]:
    """Point 1: for each running task in a private subnet, the route its image pull took,
    the addresses the registry saw for that image, and a probe from the internet side."""
    vpc = _vpc(runtime)
    private = set(map(str, runtime.spec.network.subnets.private))
    pulls = runtime.registry_endpoint.pulls
    tasks = []
    for task in runtime.cluster.tasks():
        eni = task.eni
        if task.last_status is not TaskStatus.RUNNING or eni is None:
            continue
        if str(eni.subnet) not in private:
            continue
        manifests = [
            p
            for p in pulls
            if p.repository == task.image.repository
            and p.reference == task.image.tag
            and "/manifests/" in p.path
            and p.method == "GET"
        ]
        tasks.append(
            {
                "task": task.id,
                "service": task.service,
                "private_ip": eni.private_ip,
                "image": f"{task.image.repository}:{task.image.tag}",
                "digest": task.image.manifest_digest,
                "route": vpc.registry_route(eni),
                "registry_saw": sorted({p.source for p in manifests}),
                "from_internet": await vpc.probe_from_internet(
                    eni.private_ip, task.port, PROBE_TIMEOUT_SECONDS
                ),
            }
        )
    return {
        "nat_gateways": vpc.elastic_ips(),
        "registry": runtime.registry_endpoint.url,
        "tasks": tasks,
    }


async def dns_evidence(runtime: Runtime, name: str, *, queries: int = 3) -> dict[str, Any]:
    """Point 5 in VPC mode: ``name`` asked ``queries`` times from inside a running task, as
    its resolver would ask (real DNS packets to the VPC's DNS server)."""
    vpc = _vpc(runtime)
    task = next(
        (t for t in runtime.cluster.tasks() if t.eni and t.last_status is TaskStatus.RUNNING),
        None,
    )
    if task is None or task.eni is None:
        raise LookupError("no running task to ask from")
    answers = []
    for _ in range(queries):
        query = dns.message.make_query(name, dns.rdatatype.A)
        response = dns.message.from_wire(await vpc.query_dns(task.eni, query.to_wire()))
        for rrset in response.answer:
            answers.append({"ttl": rrset.ttl, "records": [r.to_text() for r in rrset]})
    host, port = vpc.dns_address
    return {
        "asked_from": f"task {task.id} ({task.eni.private_ip})",
        "dns_server": f"{host}:{port}",
        "answers": answers,
    }
