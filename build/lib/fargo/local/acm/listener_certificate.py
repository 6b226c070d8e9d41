"""ACM's part in a running twin: the HTTPS listeners' certificate, issued at start.

certificate = ListenerCertificate(ca, names=["fargo.example.com", "localhost"],
                                  ip_addresses=["127.0.0.1"], directory=state / "certs")
certificate.paths          # (certificate.pem, private-key.pem): known before start
await certificate.start()  # issues (or reuses) the certificate there
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fargo.local.acm.authority import (
    CERTIFICATE_FILE,
    PRIVATE_KEY_FILE,
    CertificateAuthority,
    IssuedCertificate,
)


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

    @property
    def paths(self) -> tuple[Path, Path]:
        """Where the certificate chain and its key are (once started)."""
        return self.directory / CERTIFICATE_FILE, self.directory / PRIVATE_KEY_FILE

    def validate(self) -> list[str]:
        return [] if self.names or self.ip_addresses else ["no name to certify"]

    async def start(self) -> None:
        self.issued = self.ca.issue(
            names=self.names, ip_addresses=self.ip_addresses, directory=self.directory
        )

    async def stop(self) -> None:
        return None  # the certificate stays for the next run (reused while valid)
