"""A task's image pull, as ECS's agent makes it: over the network, through the task's ENI.

    puller = RegistryPuller(registry_url=lambda eni: "http://198.51.100.10:5000",
                            images=state / "images", connect=network.connect_from)
    image = await puller.pull_image(image, eni)   # what the task runs from

The registry endpoint sits where the network mode puts it (VPC mode: on the internet
side, so a task in a private subnet reaches it through its route table and the NAT
gateway; the registry logs the address it saw; with an ``ecr.dkr`` VPC endpoint, at the
endpoint's address in the task's zone, reached without the NAT gateway: ``registry_url``
answers per ENI). The manifest is fetched for every
task, by the image's tag; layers already unpacked for that digest are not fetched
again. A failed pull raises `CannotPullContainerError`, and the task stops with it.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from fargo.local.ec2.network import NetworkInterface
from fargo.local.ecr.client import CannotPullContainerError
from fargo.local.ecr.pull import pull
from fargo.local.ecr.registry import ImageManifest

ConnectFrom = Callable[[NetworkInterface, str, int], Awaitable[socket.socket]]
PULL_TIMEOUT_SECONDS = 30.0

__all__ = ["CannotPullContainerError", "RegistryPuller"]


class RegistryPuller:
    """Pulls images for tasks from the registry endpoint, each through its task's ENI."""

    def __init__(
        self,
        *,
        registry_url: Callable[[NetworkInterface], str],
        images: Path,
        connect: ConnectFrom,
    ):
        self.registry_url = registry_url
        self.images = images
        self.connect = connect

    async def pull_image(self, image: ImageManifest, eni: NetworkInterface) -> ImageManifest:
        async def connect(host: str, port: int) -> socket.socket:
            return await self.connect(eni, host, port)

        pulled = await pull(
            image.repository,
            image.tag,
            registry_url=self.registry_url(eni),
            connect=connect,
            destination=self.images / image.repository / image.tag,
            timeout=PULL_TIMEOUT_SECONDS,
        )
        if pulled.manifest_digest != image.manifest_digest:
            raise CannotPullContainerError(
                "digest_mismatch",
                f"{image.repository}:{image.tag} is {pulled.manifest_digest} at the registry, "
                f"not the {image.manifest_digest} that was pushed",
            )
        return dataclasses.replace(image, root=pulled.root)
