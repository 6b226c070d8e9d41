"""ACM's part in a running twin: the HTTPS listeners' certificate, issued at start.

certificate = ListenerCertificate(ca, names=["fargo.example.com", "localhost"],
                                  ip_addresses=["127.0.0.1"], directory=state / "certs")
certificate.paths          # (certificate.pem, private-key.pem): known before start
await certificate.start()  # issues (or reuses) the certificate there
certificate.left_out       # public names the CA may not sign (`fargo up --ca-allow` allows)

A public name the CA is not allowed to sign (`CertificateAuthority.may_sign`) is left out
of the certificate, logged with what allows it; the listeners still serve the others
(the reserved names, ``localhost``, the load balancers' DNS names, the addresses).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from fargo.local.acm.authority import (
    CERTIFICATE_FILE,
    PRIVATE_KEY_FILE,
    CertificateAuthority,
    IssuedCertificate,
)
from fargo.spec import domains

logger = logging.getLogger(__name__)


class ListenerCertificate:
    """One certificate for every HTTPS listener of the twin."""

    name = "listener certificate (ACM)"

    def __init__(
        self,
        ca: CertificateAuthority,
        *,
        names: Sequence[str],
        ip_addresses: Sequence[str],
        directory: Path,
    ) -> None:
        self.ca = ca
        self.names = list(dict.fromkeys(names))
        self.ip_addresses = list(dict.fromkeys(ip_addresses))
        self.directory = directory
        self.issued: IssuedCertificate | None = None
        self.left_out: list[str] = []

    @property
    def paths(self) -> tuple[Path, Path]:
        """Where the certificate chain and its key are (once started)."""
        return self.directory / CERTIFICATE_FILE, self.directory / PRIVATE_KEY_FILE

    def validate(self) -> list[str]:
        return [] if self.names or self.ip_addresses else ["no name to certify"]

    async def start(self) -> None:
        names = [name for name in self.names if self.ca.may_sign(name)]
        self.left_out = [name for name in self.names if name not in names]
        for name in self.left_out:
            logger.warning(
                "the listener certificate leaves out %s: the local CA signs a public name only "
                "when allowed (%s, if the name is yours)",
                name,
                domains.allow_command(name),
            )
        self.issued = self.ca.issue(
            names=names, ip_addresses=self.ip_addresses, directory=self.directory
        )

    async def stop(self) -> None:
        return None  # the certificate stays for the next run (reused while valid)
