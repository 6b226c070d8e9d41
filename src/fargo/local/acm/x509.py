"""X.509 for the twin's local CA: its certificate, leaf certificates, name constraints.

    key = new_key()
    constraints = name_constraints(["shop.example.test"], [])  # reserved names + these
    ca = ca_certificate(key, common_name="fargo local CA (host)", constraints=constraints,
                        days=CA_VALIDITY_DAYS)
    outside(ca, ["fargo.example.com"], [])                     # [] : the CA may certify it
    leaf = leaf_certificate(ca, key, new_key(), ["localhost"], [], days=397)

The CA is constrained (RFC 5280 NameConstraints, critical): it can certify only
names nobody owns on the public internet (`RESERVED_DNS_NAMES`), the loopback
addresses, and the names and addresses it was created for. Trusting it therefore
cannot let whoever reads its key impersonate any other site.

cryptography does the X.509 work; keys are EC P-256.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fargo.spec import domains

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CA_VALIDITY_DAYS = 730
# Backdate notBefore so a client whose clock is a little behind still accepts.
CLOCK_SKEW = dt.timedelta(hours=1)
# Names (each with all its subdomains) reserved from public registration: the CA may
# always certify them (`fargo.spec.domains` says which and why).
RESERVED_DNS_NAMES = domains.RESERVED_DNS_NAMES
LOOPBACK_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name_constraints(
    dns_names: Iterable[str], addresses: Iterable[IpAddress]
) -> x509.NameConstraints:
    """The reserved names and loopback networks, plus whatever of these they miss.

    A wildcard name permits its parent (``*.shop.test`` → ``shop.test``), and any
    permitted name permits its subdomains too (RFC 5280, 4.2.1.10). A name that is, or
    covers all of, a public suffix (``com``, ``*.co.uk``) raises `ValueError`: the CA
    would be trusted for every site under it.
    """
    names = list(RESERVED_DNS_NAMES)
    for name in dns_names:
        reason = domains.too_broad(name)
        if reason is not None:
            raise ValueError(reason)
        base = name.removeprefix("*.")
        if not any(_within(base, permitted) for permitted in names):
            names.append(base)
    networks: list[IpNetwork] = list(LOOPBACK_NETWORKS)
    for address in addresses:
        if not any(address in network for network in networks):
            networks.append(ipaddress.ip_network(address))
    return x509.NameConstraints(
        permitted_subtrees=[
            *(x509.DNSName(n) for n in names),
            *(x509.IPAddress(n) for n in networks),
        ],
        excluded_subtrees=None,
    )


def outside(
    ca: x509.Certificate, dns_names: Iterable[str], addresses: Iterable[IpAddress]
) -> list[str]:
    """The names and addresses ``ca``'s name constraints do not permit (none: no constraints)."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return []
    subtrees = constraints.permitted_subtrees or []
    names = [t.value for t in subtrees if isinstance(t, x509.DNSName)]
    networks = [
        t.value
        for t in subtrees
        if isinstance(t, x509.IPAddress) and isinstance(t.value, IpNetwork)
    ]
    return [
        *(n for n in dns_names if not any(_within(n, p) for p in names)),
        *(str(a) for a in addresses if not any(a in network for network in networks)),
    ]


def permitted(ca: x509.Certificate) -> list[str] | None:
    """What ``ca`` may certify, for messages; None when it is unconstrained."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    return [str(t.value) for t in constraints.permitted_subtrees or []]


def ca_certificate(
    key: ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    constraints: x509.NameConstraints,
    days: int = CA_VALIDITY_DAYS,
) -> x509.Certificate:
    """A self-signed CA that signs leaf certificates only (path length 0) in ``constraints``."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fargo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificate_signing=True), critical=True)
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )


def leaf_certificate(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    sans: frozenset[x509.GeneralName],
    *,
    common_name: str | None,
    days: int,
) -> x509.Certificate:
    """A TLS server certificate for ``sans``, valid ``days`` (never past the CA's end).

    Without a ``common_name`` (a certificate for addresses only) the subject is empty
    and the SANs critical (RFC 5280): OpenSSL would check an address put in the common
    name against the CA's DNS name constraints, and reject it.
    """
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + dt.timedelta(days=days), ca.not_valid_after_utc)
    subject = [] if common_name is None else [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificate_signing=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=common_name is None)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )


def reusable_leaf(
    ca: x509.Certificate,
    chain_path: Path,
    key_path: Path,
    sans: frozenset[x509.GeneralName],
    *,
    valid_after: dt.datetime,
) -> x509.Certificate | None:
    """The leaf in ``chain_path``, if ``ca`` signed it for exactly ``sans``, the key in
    ``key_path`` is its key and it stays valid after ``valid_after``; else None."""
    try:
        leaf = x509.load_pem_x509_certificates(chain_path.read_bytes())[0]
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        leaf.verify_directly_issued_by(ca)
        current = frozenset(
            leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        )
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return None
    if current != sans or public_der(key) != public_der(leaf):
        return None
    return leaf if leaf.not_valid_after_utc > valid_after else None


def subject_alternative_names(
    dns_names: Sequence[str], addresses: Sequence[IpAddress]
) -> frozenset[x509.GeneralName]:
    return frozenset(
        [*(x509.DNSName(n) for n in dns_names), *(x509.IPAddress(a) for a in addresses)]
    )


def public_der(owner: x509.Certificate | PrivateKeyTypes) -> bytes:
    """The DER public key of a certificate or a private key, to check they belong together."""
    return owner.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256, colon-separated upper-case hex as openssl prints it."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def too_broad(ca: x509.Certificate) -> list[str]:
    """The permitted names of ``ca`` that are public suffixes (an older fargo took them)."""
    return [name for name in permitted(ca) or [] if domains.too_broad(name) is not None]


def _within(name: str, permitted: str) -> bool:
    return domains.within(name, permitted)


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
