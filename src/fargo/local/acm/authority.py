"""ACM for the twin: a local certificate authority that issues the listener certificates.

The CA lives in the state folder and is created once, so a user trusts it once
(``fargo`` prints :attr:`CertificateAuthority.certificate_path`). Leaf
certificates are reused while they cover the same names and stay valid for a
while, so ``fargo up`` does not re-issue on every run.

Trusting the CA must not let whoever reads ``ca-key.pem`` impersonate any site,
so it lasts two years and is name-constrained (`fargo.local.acm.x509`): it may
certify the reserved names (``localhost``, ``*.internal``, ``*.test``,
``example.com``...), loopback addresses, and the names and addresses of the first
certificate it issues, which it is created for — never a public suffix nor all of
one (``com``, ``*.co.uk``: `fargo.spec.domains`), which `issue` refuses with
`InvalidParameter`, and a CA on disk permitting one is refused at load. A later
request outside those is refused with `CertificateAuthorityError`: delete the CA
folder so the next run creates a CA covering the new names (and trust that one).

A public name (any name outside the reserved ones: ``shop.mycompany.com``,
``www.google.com``) is signed only when explicitly allowed — ``allowed`` names it or a
domain above it (`fargo up --ca-allow`), or the CA on disk was created for it by such a
run — since no one can tell offline who owns a domain, and a CA that may sign a public
name lets whoever reads its key impersonate that site. `may_sign` says which names it
will sign, so the caller can leave the others out; `issue` refuses them.

    ca = CertificateAuthority(state / "ca", allowed=["shop.mycompany.com"])
    ca.ensure()
    issued = ca.issue(names=["localhost"], ip_addresses=["127.0.0.1"], directory=state / "alb")
    issued.certificate_path, issued.private_key_path  # the leaf + CA chain, the key (0600)

cryptography does the X.509 work (`fargo.local.acm.x509`); keys are EC P-256.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fargo.local.acm import x509 as ca_x509
from fargo.local.acm.x509 import IpAddress
from fargo.local.state.files import write_atomically
from fargo.spec import domains

logger = logging.getLogger(__name__)

CA_CERTIFICATE_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERTIFICATE_FILE = "certificate.pem"  # the leaf, then the CA: what a server presents
PRIVATE_KEY_FILE = "private-key.pem"
# Publicly trusted TLS certificates may last at most 398 days; clients enforce it.
LEAF_VALIDITY_DAYS = 397
RENEW_BEFORE_DAYS = 30
DIRECTORY_MODE = 0o700
PRIVATE_KEY_MODE = 0o600
CERTIFICATE_MODE = 0o644


class AcmError(Exception):
    """Base of the errors of the local certificate authority."""


class InvalidParameter(AcmError, ValueError):
    """A certificate request ACM would reject: no names, a bad address, a bad validity."""


class CertificateAuthorityError(AcmError):
    """The CA files are incomplete, mismatched or expired, or the CA may not certify a name."""


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf certificate on disk and what it says."""

    certificate_path: Path
    private_key_path: Path
    names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str  # SHA-256, colon-separated hex as openssl prints it


class CertificateAuthority:
    """The twin's CA, kept in ``directory`` (``ca.pem`` and ``ca-key.pem``)."""

    def __init__(self, directory: Path, *, allowed: Sequence[str] = ()) -> None:
        self._directory = directory
        # Public names (and the names under them) its user allowed it to sign.
        self._allowed = tuple(domains.base_name(name) for name in allowed)
        self._certificate: x509.Certificate | None = None
        self._key: ec.EllipticCurvePrivateKey | None = None
        # Created by this object and not used yet: nobody can trust it so far, so it may
        # still be created again to cover the names of the first certificate it issues.
        self._unused = False

    @property
    def certificate_path(self) -> Path:
        return self._directory / CA_CERTIFICATE_FILE

    @property
    def key_path(self) -> Path:
        return self._directory / CA_KEY_FILE

    @property
    def fingerprint(self) -> str:
        return ca_x509.fingerprint(self._used()[0])

    def ensure(self) -> None:
        """Load the CA, or create it when the directory holds none."""
        if self._certificate is not None:
            return
        _make_private_directory(self._directory)
        present = [p.exists() for p in (self.certificate_path, self.key_path)]
        if all(present):
            self._certificate, self._key = self._load()
        elif any(present):
            raise CertificateAuthorityError(
                f"{self._directory} holds only one of {CA_CERTIFICATE_FILE} and {CA_KEY_FILE}; "
                "restore the other, or delete both to create a new CA (and trust it again)"
            )
        else:
            self._certificate, self._key = self._create([], [])

    def may_sign(self, name: str) -> bool:
        """Whether `issue` signs ``name``: a reserved name, one under an allowed name, or one
        the CA on disk was created for (allowed by an earlier run)."""
        base = domains.base_name(name)
        if domains.reserved(base) or any(domains.within(base, a) for a in self._allowed):
            return True
        self.ensure()
        assert self._certificate is not None
        if self._unused or ca_x509.permitted(self._certificate) is None:
            # made here for no name yet (it covers what is allowed now), or by an older
            # fargo without constraints: it permits everything, which allows nothing
            return False
        return not ca_x509.outside(self._certificate, [_dns_name(name)], [])

    def issue(
        self,
        *,
        names: Sequence[str],
        ip_addresses: Sequence[str],
        directory: Path,
        days: int = LEAF_VALIDITY_DAYS,
    ) -> IssuedCertificate:
        """A server certificate for ``names`` and ``ip_addresses``, written into ``directory``.

        An existing certificate there is reused when this CA signed it for the same
        names and addresses and it stays valid for more than 30 days. Names the CA may
        not certify raise `CertificateAuthorityError` (see the module's docstring).
        """
        dns_names = tuple(dict.fromkeys(_dns_name(n) for n in names))
        addresses = tuple(dict.fromkeys(_ip_address(a) for a in ip_addresses))
        if not dns_names and not addresses:
            raise InvalidParameter("a certificate needs at least one DNS name or IP address")
        for name in dns_names:
            # ACM refuses these too; here the CA would also become trusted for them.
            reason = domains.too_broad(name)
            if reason is not None:
                raise InvalidParameter(reason)
        refused = [name for name in dns_names if not self.may_sign(name)]
        if refused:
            raise CertificateAuthorityError(
                f"the local CA signs a public name only when allowed, and "
                f"{', '.join(refused)} is not: no one can tell offline who owns a domain, and "
                "whoever reads the CA's key could impersonate the name to whoever trusts the "
                f"CA; if the name is yours, run {domains.allow_command(refused[0])}"
            )
        if days < 1:
            raise InvalidParameter(f"validity of {days} days must be at least 1 day")
        ca_certificate, ca_key = self._covering(dns_names, addresses)
        _make_private_directory(directory)
        certificate_path = directory / CERTIFICATE_FILE
        key_path = directory / PRIVATE_KEY_FILE
        sans = ca_x509.subject_alternative_names(dns_names, addresses)
        renew_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=RENEW_BEFORE_DAYS)
        leaf = ca_x509.reusable_leaf(
            ca_certificate, certificate_path, key_path, sans, valid_after=renew_at
        )
        if leaf is None:
            key = ca_x509.new_key()
            common_name = dns_names[0] if dns_names else None
            leaf = ca_x509.leaf_certificate(
                ca_certificate, ca_key, key, sans, common_name=common_name, days=days
            )
            write_atomically(key_path, ca_x509.private_pem(key), PRIVATE_KEY_MODE)
            chain = ca_x509.certificate_pem(leaf) + ca_x509.certificate_pem(ca_certificate)
            write_atomically(certificate_path, chain, CERTIFICATE_MODE)
        return IssuedCertificate(
            certificate_path=certificate_path,
            private_key_path=key_path,
            names=dns_names,
            ip_addresses=tuple(str(a) for a in addresses),
            subject=leaf.subject.rfc4514_string(),
            issuer=leaf.issuer.rfc4514_string(),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            fingerprint=ca_x509.fingerprint(leaf),
        )

    def _covering(
        self, dns_names: Sequence[str], addresses: Sequence[IpAddress]
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The CA, if its name constraints permit these names (created anew while unused)."""
        self.ensure()
        assert self._certificate is not None and self._key is not None
        outside = ca_x509.outside(self._certificate, dns_names, addresses)
        if outside and self._unused:
            self._certificate, self._key = self._create(dns_names, addresses)
        elif outside:
            permitted = ", ".join(ca_x509.permitted(self._certificate) or [])
            raise CertificateAuthorityError(
                f"the CA in {self._directory} was created for other names and may not certify "
                f"{', '.join(outside)} (it may certify: {permitted}); delete the folder "
                f"{self._directory} so that the next run creates a CA covering them "
                "(and trust the new CA in place of the old one)"
            )
        return self._used()

    def _used(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        self.ensure()
        assert self._certificate is not None and self._key is not None
        self._unused = False
        return self._certificate, self._key

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        try:
            certificate = x509.load_pem_x509_certificate(self.certificate_path.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except ValueError as error:
            raise CertificateAuthorityError(
                f"cannot read the CA in {self._directory}: {error}; "
                "delete both files to create a new CA (and trust it again)"
            ) from error
        matching = ca_x509.public_der(key) == ca_x509.public_der(certificate)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not matching:
            raise CertificateAuthorityError(
                f"{self.key_path} is not the key of {self.certificate_path}; "
                "delete both files to create a new CA (and trust it again)"
            )
        if certificate.not_valid_after_utc <= dt.datetime.now(dt.UTC):
            raise CertificateAuthorityError(
                f"the CA in {self.certificate_path} expired on "
                f"{certificate.not_valid_after_utc:%Y-%m-%d}; delete {CA_CERTIFICATE_FILE} and "
                f"{CA_KEY_FILE} to create a new CA (and trust it again)"
            )
        broad = ca_x509.too_broad(certificate)
        if broad:
            raise CertificateAuthorityError(
                f"the CA in {self._directory} may certify every name under "
                f"{', '.join(broad)} (an older fargo took a public suffix from the spec): "
                "whoever reads its key could impersonate any site there; remove it from "
                "the browsers and systems that trust it, and delete the folder so that the "
                "next run creates a CA for the spec's own names"
            )
        if ca_x509.permitted(certificate) is None:
            logger.warning(
                "the CA in %s has no name constraints (an older fargo made it): whoever reads "
                "its key can impersonate any site to a client that trusts it; delete the "
                "folder to create a constrained CA (and trust that one instead)",
                self._directory,
            )
        self.key_path.chmod(PRIVATE_KEY_MODE)
        return certificate, key

    def _create(
        self, dns_names: Sequence[str], addresses: Sequence[IpAddress]
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ca_x509.new_key()
        certificate = ca_x509.ca_certificate(
            key,
            common_name=f"fargo local CA ({socket.gethostname()})",
            constraints=ca_x509.name_constraints(dns_names, addresses),
        )
        # The key first: a certificate without its key is the state ensure() refuses.
        write_atomically(self.key_path, ca_x509.private_pem(key), PRIVATE_KEY_MODE)
        write_atomically(
            self.certificate_path, ca_x509.certificate_pem(certificate), CERTIFICATE_MODE
        )
        self._unused = True
        return certificate, key


def _dns_name(name: str) -> str:
    text = name.strip().rstrip(".").lower()
    try:
        encoded = text.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise InvalidParameter(f"{name!r} is not a valid DNS name: {error}") from None
    if not encoded:
        raise InvalidParameter("an empty DNS name cannot go into a certificate")
    return encoded


def _ip_address(text: str) -> IpAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidParameter(f"{text!r} is not an IP address") from None


def _make_private_directory(directory: Path) -> None:
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    directory.chmod(DIRECTORY_MODE)
