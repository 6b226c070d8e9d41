"""ACM for the twin: a local certificate authority that issues the listener certificates.

The CA lives in the state folder and is created once, so a user trusts it once
(``fargo`` prints :attr:`CertificateAuthority.certificate_path`). Leaf
certificates are reused while they cover the same names and stay valid for a
while, so ``fargo up`` does not re-issue on every run.

    ca = CertificateAuthority(state / "ca")
    ca.ensure()
    issued = ca.issue(names=["localhost"], ip_addresses=["127.0.0.1"], directory=state / "alb")
    issued.certificate_path, issued.private_key_path  # the leaf + CA chain, the key (0600)

cryptography does the X.509 work; the key type is EC P-256.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CA_CERTIFICATE_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERTIFICATE_FILE = "certificate.pem"  # the leaf, then the CA: what a server presents
PRIVATE_KEY_FILE = "private-key.pem"
CA_VALIDITY_DAYS = 3650
# Publicly trusted TLS certificates may last at most 398 days; clients enforce it.
LEAF_VALIDITY_DAYS = 397
RENEW_BEFORE_DAYS = 30
# Backdate notBefore so a client whose clock is a little behind still accepts.
CLOCK_SKEW = dt.timedelta(hours=1)
DIRECTORY_MODE = 0o700
PRIVATE_KEY_MODE = 0o600
CERTIFICATE_MODE = 0o644
MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2


class AcmError(Exception):
    """Base of the errors of the local certificate authority."""


class InvalidParameter(AcmError, ValueError):
    """A certificate request ACM would reject: no names, a bad address, a bad validity."""


class CertificateAuthorityError(AcmError):
    """The CA files in the state folder are incomplete, mismatched or expired."""


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

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context presenting this certificate (TLS 1.2 or later)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = MINIMUM_TLS_VERSION
        context.load_cert_chain(self.certificate_path, self.private_key_path)
        return context


class CertificateAuthority:
    """The twin's CA, kept in ``directory`` (``ca.pem`` and ``ca-key.pem``)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._certificate: x509.Certificate | None = None
        self._key: ec.EllipticCurvePrivateKey | None = None

    @property
    def certificate_path(self) -> Path:
        return self._directory / CA_CERTIFICATE_FILE

    @property
    def key_path(self) -> Path:
        return self._directory / CA_KEY_FILE

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self._loaded()[0])

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
            self._certificate, self._key = self._create()

    def client_context(self) -> ssl.SSLContext:
        """A TLS client context that trusts this CA only (TLS 1.2 or later)."""
        self.ensure()
        context = ssl.create_default_context(cafile=str(self.certificate_path))
        context.minimum_version = MINIMUM_TLS_VERSION
        return context

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
        names and addresses and it stays valid for more than 30 days.
        """
        dns_names = tuple(dict.fromkeys(_dns_name(n) for n in names))
        addresses = tuple(dict.fromkeys(_ip_address(a) for a in ip_addresses))
        if not dns_names and not addresses:
            raise InvalidParameter("a certificate needs at least one DNS name or IP address")
        if days < 1:
            raise InvalidParameter(f"validity of {days} days must be at least 1 day")
        ca_certificate, ca_key = self._loaded()
        _make_private_directory(directory)
        certificate_path = directory / CERTIFICATE_FILE
        key_path = directory / PRIVATE_KEY_FILE
        sans = _sans(dns_names, addresses)
        leaf = self._reusable(certificate_path, key_path, sans)
        if leaf is None:
            key = ec.generate_private_key(ec.SECP256R1())
            now = dt.datetime.now(dt.UTC)
            common_name = (dns_names or tuple(str(a) for a in addresses))[0]
            leaf = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                .issuer_name(ca_certificate.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW)
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_key_usage(certificate_signing=False), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
                )
                .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
                )
                .sign(ca_key, hashes.SHA256())
            )
            _write(key_path, _private_pem(key), PRIVATE_KEY_MODE)
            chain = leaf.public_bytes(serialization.Encoding.PEM) + ca_certificate.public_bytes(
                serialization.Encoding.PEM
            )
            _write(certificate_path, chain, CERTIFICATE_MODE)
        return IssuedCertificate(
            certificate_path=certificate_path,
            private_key_path=key_path,
            names=dns_names,
            ip_addresses=tuple(str(a) for a in addresses),
            subject=leaf.subject.rfc4514_string(),
            issuer=leaf.issuer.rfc4514_string(),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            fingerprint=_fingerprint(leaf),
        )

    def _loaded(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        self.ensure()
        assert self._certificate is not None and self._key is not None
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
        if not isinstance(key, ec.EllipticCurvePrivateKey) or _public(key) != _public(certificate):
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
        self.key_path.chmod(PRIVATE_KEY_MODE)
        return certificate, key

    def _create(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fargo"),
                x509.NameAttribute(
                    NameOID.COMMON_NAME, f"fargo local CA ({socket.gethostname()})"[:64]
                ),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=CA_VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(certificate_signing=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        # The key first: a certificate without its key is the state ensure() refuses.
        _write(self.key_path, _private_pem(key), PRIVATE_KEY_MODE)
        _write(
            self.certificate_path,
            certificate.public_bytes(serialization.Encoding.PEM),
            CERTIFICATE_MODE,
        )
        return certificate, key

    def _reusable(
        self, certificate_path: Path, key_path: Path, sans: frozenset[x509.GeneralName]
    ) -> x509.Certificate | None:
        """The certificate already in place, if it can serve these SANs for a while longer."""
        ca_certificate, _ = self._loaded()
        try:
            leaf = x509.load_pem_x509_certificates(certificate_path.read_bytes())[0]
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            leaf.verify_directly_issued_by(ca_certificate)
            current = frozenset(
                leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            )
        except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return None
        renew_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=RENEW_BEFORE_DAYS)
        if current != sans or _public(key) != _public(leaf) or leaf.not_valid_after_utc <= renew_at:
            return None
        return leaf


def _sans(dns_names: Sequence[str], addresses: Sequence[IpAddress]) -> frozenset[x509.GeneralName]:
    return frozenset(
        [*(x509.DNSName(n) for n in dns_names), *(x509.IPAddress(a) for a in addresses)]
    )


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


def _key_usage(*, certificate_signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not certificate_signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificate_signing,
        crl_sign=certificate_signing,
        encipher_only=False,
        decipher_only=False,
    )


def _public(owner: x509.Certificate | PrivateKeyTypes) -> bytes:
    """The DER public key of a certificate or a private key, to check they belong together."""
    return owner.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_private_directory(directory: Path) -> None:
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    directory.chmod(DIRECTORY_MODE)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from its first byte, replacing ``path`` atomically."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", closefd=False) as file:
            file.write(data)
            file.flush()
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
