"""``fargo scale SERVICE N`` and ``fargo restart SERVICE``: ECS's update-service, on the twin.

``scale`` sets the desired count and waits (unless ``--no-wait``) until the service is
stable at it, as ``aws ecs wait services-stable`` does: the new tasks healthy and in
their target groups, the surplus drained and stopped. ``restart`` replaces every task
by a rolling deployment on the image the service runs (``--force-new-deployment``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from fargo.local.control.client import ControlClient, ControlError
from fargo.local.state import folder as state
from fargo.local.status import ServiceStatus

SCALE_TIMEOUT_SECONDS = 180.0
DEPLOYMENT_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 0.25


def scale_command(args: argparse.Namespace) -> int:
    client = ControlClient(state.control_socket(args.state_dir.resolve()))
    try:
        answer = asyncio.run(client.post(f"/services/{args.service}/scale?count={args.count}"))
    except ControlError as err:
        print(f"fargo scale: {err}", file=sys.stderr)
        return 1
    print(f"{args.service}: desired count {answer['desired']}", flush=True)
    if args.no_wait:
        return 0
    return _wait_stable(client, args.service, args.timeout)


def _wait_stable(client: ControlClient, service: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        try:
            described = asyncio.run(client.status()).service(service)
        except ControlError as err:
            print(f"fargo scale: {err}", file=sys.stderr)
            return 1
        progress = _progress(described)
        if progress != shown:
            print(f"  {progress}", flush=True)
            shown = progress
        if _stable(described):
            return 0
        if time.monotonic() > deadline:
            print(
                f"fargo scale: {service} is not stable after {timeout:g} s "
                f"(see `fargo events --service {service}`)",
                file=sys.stderr,
            )
            return 1
        time.sleep(POLL_SECONDS)


def _stable(service: ServiceStatus) -> bool:
    return (
        service.healthy == service.desired
        and service.running == service.desired
        and service.pending == 0
        and len(service.tasks) == service.desired  # surplus tasks drained and gone
    )


def _progress(service: ServiceStatus) -> str:
    draining = len(service.tasks) - service.running - service.pending
    return f"{service.healthy} of {service.desired} tasks healthy, {service.pending} starting" + (
        f", {draining} stopping" if draining > 0 else ""
    )


def restart_command(args: argparse.Namespace) -> int:
    client = ControlClient(
        state.control_socket(args.state_dir.resolve()), timeout=DEPLOYMENT_TIMEOUT_SECONDS
    )
    print(f"{args.service}: replacing every task (rolling deployment)…", flush=True)
    try:
        result = asyncio.run(
            client.post(f"/services/{args.service}/restart", timeout=DEPLOYMENT_TIMEOUT_SECONDS)
        )
    except ControlError as err:
        print(f"fargo restart: {err}", file=sys.stderr)
        return 1
    verdict = "completed" if result["completed"] else "rolled back"
    print(f"deployment of {args.service} revision {result['revision']} {verdict}")
    for event in result["events"][-4:]:
        print(f"  {event}")
    return 0 if result["completed"] else 1
