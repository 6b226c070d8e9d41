"""The local CA standing in for ACM: stable across runs, certificates a real TLS client accepts."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.local.conftest import client_context

from fargo.local.acm import x509 as ca_x509
from fargo.local.acm.authority import (
    CertificateAuthority,
    CertificateAuthorityError,
    InvalidParameter,
    IssuedCertificate,
)

TIMEOUT = 5.0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    authority = CertificateAuthority(tmp_path / "ca")
    authority.ensure()
    return authority


def issue(ca: CertificateAuthority, directory: Path, **kw: object) -> IssuedCertificate:
    return ca.issue(
        names=kw.pop("names", ["localhost"]),  # type: ignore[arg-type]
        ip_addresses=kw.pop("ip_addresses", ["127.0.0.1"]),  # type: ignore[arg-type]
        directory=directory,
        **kw,  # type: ignore[arg-type]
    )


def test_construction_has_no_side_effects(tmp_path: Path) -> None:
    CertificateAuthority(tmp_path / "ca")
    assert not (tmp_path / "ca").exists()


def test_ca_is_created_once_and_reused(tmp_path: Path) -> None:
    first = CertificateAuthority(tmp_path / "ca")
    first.ensure()
    second = CertificateAuthority(tmp_path / "ca")
    second.ensure()
    assert first.fingerprint == second.fingerprint
    assert mode(tmp_path / "ca") == 0o700
    assert mode(first.key_path) == 0o600
    assert first.certificate_path == tmp_path / "ca" / "ca.pem"


def test_ca_certificate(ca: CertificateAuthority) -> None:
    certificate = x509.load_pem_x509_certificate(ca.certificate_path.read_bytes())
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert (constraints.value.ca, constraints.value.path_length) == (True, 0)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == f"fargo local CA ({socket.gethostname()})"
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert dt.timedelta(days=729) < lifetime < dt.timedelta(days=732)
    name_constraints = certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert name_constraints.critical
    permitted = {str(t.value) for t in name_constraints.value.permitted_subtrees or []}
    assert {"localhost", "internal", "test", "example.com", "127.0.0.0/8", "::1/128"} <= permitted
    assert name_constraints.value.excluded_subtrees is None


def test_leaf_certificate(ca: CertificateAuthority, tmp_path: Path) -> None:
    issued = issue(ca, tmp_path / "alb", names=["localhost", "App.Local"])
    assert issued.names == ("localhost", "app.local")
    assert issued.ip_addresses == ("127.0.0.1",)
    assert issued.issuer == f"CN=fargo local CA ({socket.gethostname()}),O=fargo"
    assert issued.subject == "CN=localhost"
    assert dt.timedelta(days=396) < issued.not_after - issued.not_before < dt.timedelta(days=398)
    assert mode(issued.private_key_path) == 0o600
    assert mode(tmp_path / "alb") == 0o700
    leaf, chained_ca = x509.load_pem_x509_certificates(issued.certificate_path.read_bytes())
    assert chained_ca.fingerprint(hashes.SHA256()).hex(":").upper() == ca.fingerprint
    leaf.verify_directly_issued_by(chained_ca)
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def server_context(issued: IssuedCertificate) -> ssl.SSLContext:
    """A TLS server presenting ``issued``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.certificate_path, issued.private_key_path)
    return context


async def handshake(
    issued: IssuedCertificate | ssl.SSLContext, client: ssl.SSLContext, server_hostname: str
) -> str | None:
    """Serve TLS with ``issued`` on 127.0.0.1 and connect; the negotiated version."""
    served = issued if isinstance(issued, ssl.SSLContext) else server_context(issued)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client, server_hostname=server_hostname
            )
            writer.write(b"ping\n")
            assert await reader.readline() == b"ping\n"
            version: str | None = writer.get_extra_info("ssl_object").version()
            writer.close()
            return version
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
async def test_tls_clients_trusting_the_ca_accept_the_leaf(
    ca: CertificateAuthority, tmp_path: Path, server_hostname: str
) -> None:
    issued = issue(ca, tmp_path / "alb")
    version = await handshake(issued, client_context(ca), server_hostname)
    assert version in ("TLSv1.2", "TLSv1.3")


async def test_tls_clients_reject_other_names_and_other_cas(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    issued = issue(ca, tmp_path / "alb")
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(issued, client_context(ca), "example.com")
    stranger = CertificateAuthority(tmp_path / "other-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(issued, client_context(stranger), "localhost")


def test_a_valid_leaf_for_the_same_names_is_reused(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    first = issue(ca, tmp_path / "alb")
    again = issue(CertificateAuthority(ca.certificate_path.parent), tmp_path / "alb")
    assert again == first
    other_names = issue(ca, tmp_path / "alb", names=["localhost", "app.local"])
    assert other_names.fingerprint != first.fingerprint


def test_a_leaf_expiring_within_30_days_is_reissued(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    short = issue(ca, tmp_path / "alb", days=20)
    renewed = issue(ca, tmp_path / "alb")
    assert renewed.fingerprint != short.fingerprint
    assert renewed.not_after > short.not_after


def test_a_leaf_from_another_ca_is_reissued(ca: CertificateAuthority, tmp_path: Path) -> None:
    foreign = issue(CertificateAuthority(tmp_path / "other-ca"), tmp_path / "alb")
    ours = issue(ca, tmp_path / "alb")
    assert ours.fingerprint != foreign.fingerprint
    assert ours.issuer == foreign.issuer  # same name on this host: the signature decides


@pytest.mark.parametrize(
    "request_",
    [
        {"names": [], "ip_addresses": []},
        {"ip_addresses": ["not-an-ip"]},
        {"names": [""]},
        {"days": 0},
    ],
)
def test_invalid_requests(
    ca: CertificateAuthority, tmp_path: Path, request_: dict[str, object]
) -> None:
    with pytest.raises(InvalidParameter):
        issue(ca, tmp_path / "alb", **request_)


def test_a_half_present_ca_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    CertificateAuthority(directory).ensure()
    (directory / "ca-key.pem").unlink()
    with pytest.raises(CertificateAuthorityError, match=r"ca-key\.pem"):
        CertificateAuthority(directory).ensure()


def test_a_mismatched_key_is_refused(tmp_path: Path) -> None:
    CertificateAuthority(tmp_path / "a").ensure()
    CertificateAuthority(tmp_path / "b").ensure()
    (tmp_path / "a" / "ca-key.pem").write_bytes((tmp_path / "b" / "ca-key.pem").read_bytes())
    with pytest.raises(CertificateAuthorityError, match="is not the key"):
        CertificateAuthority(tmp_path / "a").ensure()


# The reference system's listener certificate (runtime._issue_certificate).
REFERENCE_NAMES = [
    "fargo.example.com",
    "fargo-demo-public.us-east-1.elb.fargo.internal",
    "localhost",
]


@pytest.mark.parametrize("server_hostname", [*REFERENCE_NAMES, "127.0.0.1"])
async def test_the_constrained_ca_certifies_the_reference_names(
    ca: CertificateAuthority, tmp_path: Path, server_hostname: str
) -> None:
    issued = issue(ca, tmp_path / "alb", names=REFERENCE_NAMES)
    assert await handshake(issued, client_context(ca), server_hostname)


async def test_a_leaf_with_only_an_address_is_accepted(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    issued = issue(ca, tmp_path / "alb", names=[])
    assert issued.subject == ""
    assert await handshake(issued, client_context(ca), "127.0.0.1")


def forged(ca: CertificateAuthority, directory: Path, name: str) -> ssl.SSLContext:
    """A server context for a leaf signed with the CA's key for ``name``, bypassing issue()."""
    ca_certificate = x509.load_pem_x509_certificate(ca.certificate_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return forged_with(ca_certificate, ca_key, directory, name)


def forged_with(
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    directory: Path,
    name: str,
) -> ssl.SSLContext:
    """A server context for a leaf ``ca_key`` signs for ``name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir()
    (directory / "chain.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + ca_certificate.public_bytes(serialization.Encoding.PEM)
    )
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "chain.pem", directory / "key.pem")
    return context


@pytest.mark.parametrize("name", ["www.bank.com", "example.co", "notexample.com"])
async def test_a_leaf_outside_the_constraints_fails_verification(
    ca: CertificateAuthority, tmp_path: Path, name: str
) -> None:
    server = forged(ca, tmp_path / "forged", name)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"permitted|violation"):
        await handshake(server, client_context(ca), name)


async def test_a_forged_leaf_inside_the_constraints_passes(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    # the control for the test above: only the name differs
    server = forged(ca, tmp_path / "forged", "app.fargo.internal")
    assert await handshake(server, client_context(ca), "app.fargo.internal")


async def test_a_new_ca_covers_the_names_of_its_first_certificate(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca", allowed=["mycompany.com"])
    ca.ensure()  # as the runtime does, before it knows the names
    issued = issue(ca, tmp_path / "alb", names=["shop.mycompany.com", "*.api.mycompany.com"])
    assert await handshake(issued, client_context(ca), "shop.mycompany.com")
    assert await handshake(issued, client_context(ca), "v1.api.mycompany.com")
    # the same CA issues again for those names (and subdomains), allowed by the run that
    # created it, but not for others, even when allowed now
    again = CertificateAuthority(tmp_path / "ca")
    assert again.may_sign("admin.shop.mycompany.com") and not again.may_sign("www.mycompany.com")
    issue(again, tmp_path / "other", names=["admin.shop.mycompany.com", "localhost"])
    allowed = CertificateAuthority(tmp_path / "ca", allowed=["www.mycompany.com"])
    with pytest.raises(CertificateAuthorityError, match=r"(?s)www\.mycompany\.com.*delete"):
        issue(allowed, tmp_path / "third", names=["www.mycompany.com"])
    with pytest.raises(CertificateAuthorityError, match=r"10\.0\.0\.1"):
        issue(again, tmp_path / "fourth", ip_addresses=["10.0.0.1"])


def test_a_ca_in_use_is_not_replaced(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca", allowed=["shop.mycompany.com"])
    fingerprint = ca.fingerprint  # someone has looked at it: it may be trusted
    with pytest.raises(CertificateAuthorityError, match="delete the folder"):
        issue(ca, tmp_path / "alb", names=["shop.mycompany.com"])
    assert CertificateAuthority(ca.certificate_path.parent).fingerprint == fingerprint


@pytest.mark.parametrize("name", ["www.google.com", "*.mycompany.com", "shop.co.uk"])
async def test_the_ca_signs_a_public_name_only_when_allowed(tmp_path: Path, name: str) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    ca.ensure()
    assert not ca.may_sign(name) and ca.may_sign("fargo.example.com")
    with pytest.raises(CertificateAuthorityError, match=r"only when allowed.*--ca-allow"):
        issue(ca, tmp_path / "alb", names=["localhost", name])
    # nor was a CA made for it: the CA still may certify only the reserved names
    permitted = ca_x509.permitted(x509.load_pem_x509_certificate(ca.certificate_path.read_bytes()))
    assert permitted is not None and not any(name.removeprefix("*.") in p for p in permitted)
    base = name.removeprefix("*.")
    issue(ca, tmp_path / "alb", names=["localhost"])  # the twin leaves the name out
    # Allowed later: that CA, maybe trusted by now, never grows; a new one is made for it.
    with pytest.raises(CertificateAuthorityError, match="delete the folder"):
        issue(CertificateAuthority(tmp_path / "ca", allowed=[base]), tmp_path / "alb", names=[name])
    allowed = CertificateAuthority(tmp_path / "new-ca", allowed=[base])
    issued = issue(allowed, tmp_path / "alb", names=["localhost", name])
    host = f"www.{base}" if name.startswith("*.") else name
    assert await handshake(issued, client_context(allowed), host)


def test_leaves_never_outlive_the_ca(ca: CertificateAuthority, tmp_path: Path) -> None:
    issued = issue(ca, tmp_path / "alb", days=5000)
    certificate = x509.load_pem_x509_certificate(ca.certificate_path.read_bytes())
    assert issued.not_after == certificate.not_valid_after_utc


@pytest.mark.parametrize("name", ["com", "*.com", "co.uk", "*.co.uk", "github.io"])
def test_the_ca_refuses_a_public_suffix(tmp_path: Path, name: str) -> None:
    ca = CertificateAuthority(tmp_path / "ca", allowed=["shop.mycompany.com"])
    ca.ensure()

    with pytest.raises(InvalidParameter, match="public suffix"):
        issue(ca, tmp_path / "alb", names=["shop.mycompany.com", name])
    # Nor was a CA made for it: the next certificate makes one for its own names only.
    issue(ca, tmp_path / "alb", names=["shop.mycompany.com"])
    constraints = x509.load_pem_x509_certificate(ca.certificate_path.read_bytes()).extensions
    permitted = constraints.get_extension_for_class(x509.NameConstraints).value
    names = {t.value for t in permitted.permitted_subtrees or [] if isinstance(t, x509.DNSName)}
    assert "shop.mycompany.com" in names
    assert not names & {"com", "co.uk", "mycompany.com", "github.io"}


def test_name_constraints_never_cover_a_public_suffix() -> None:
    with pytest.raises(ValueError, match=r"public suffix 'co\.uk'"):
        ca_x509.name_constraints(["*.co.uk"], [])
    # A wildcard under a registrable domain permits that name and below, not its parent.
    constraints = ca_x509.name_constraints(["*.shop.co.uk"], [])
    names = [t.value for t in constraints.permitted_subtrees or [] if isinstance(t, x509.DNSName)]
    assert "shop.co.uk" in names and "co.uk" not in names


async def test_a_ca_an_older_fargo_made_for_a_public_suffix_is_refused(tmp_path: Path) -> None:
    # What `subject_alternative_names: ["*.com"]` made before: a CA that may sign all of .com.
    directory = tmp_path / "ca"
    directory.mkdir()
    key = ca_x509.new_key()
    broad = x509.NameConstraints(permitted_subtrees=[x509.DNSName("com")], excluded_subtrees=None)
    certificate = ca_x509.ca_certificate(key, common_name="fargo local CA", constraints=broad)
    (directory / "ca-key.pem").write_bytes(ca_x509.private_pem(key))
    (directory / "ca.pem").write_bytes(ca_x509.certificate_pem(certificate))
    # The danger is real: a forged leaf for www.google.com verifies against it.
    server = forged_with(certificate, key, tmp_path / "forged", "www.google.com")
    trusting = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    assert await handshake(server, trusting, "www.google.com")

    with pytest.raises(CertificateAuthorityError, match=r"(?s)every name under com.*delete"):
        CertificateAuthority(directory).ensure()


def test_a_ca_an_older_fargo_made_without_constraints_signs_no_public_name(
    tmp_path: Path,
) -> None:
    # It permits every name: that is no allowance (`fargo up --ca-allow`) for any.
    directory = tmp_path / "ca"
    directory.mkdir(mode=0o700)
    key = ca_x509.new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "an older fargo's CA")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "ca-key.pem").write_bytes(ca_x509.private_pem(key))
    (directory / "ca.pem").write_bytes(ca_x509.certificate_pem(certificate))
    ca = CertificateAuthority(directory)
    assert not ca.may_sign("www.google.com") and ca.may_sign("localhost")
    with pytest.raises(CertificateAuthorityError, match="only when allowed"):
        issue(ca, tmp_path / "alb", names=["www.google.com"])
