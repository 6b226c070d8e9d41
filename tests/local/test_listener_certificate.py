"""The twin's listener certificate: a spec's public names are left out unless allowed
(`fargo up --ca-allow`), with real certificates from a real local CA."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from cryptography import x509

from fargo.local.acm.authority import CertificateAuthority
from fargo.local.acm.listener_certificate import ListenerCertificate
from fargo.local.cli.options import add_runtime_options, config_from_args
from fargo.local.config import ConfigError

NAMES = ["shop.mycompany.com", "fargo-demo-public.us-east-1.elb.fargo.internal", "localhost"]


def certified_names(certificate: ListenerCertificate) -> set[str]:
    chain = x509.load_pem_x509_certificates(certificate.paths[0].read_bytes())
    sans = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(sans.get_values_for_type(x509.DNSName))


async def test_a_public_name_is_left_out_of_the_certificate_unless_allowed(tmp_path: Path) -> None:
    certificate = ListenerCertificate(
        CertificateAuthority(tmp_path / "ca"),
        names=NAMES,
        ip_addresses=["127.0.0.1"],
        directory=tmp_path / "certs",
    )
    await certificate.start()
    assert certificate.left_out == ["shop.mycompany.com"]
    assert certified_names(certificate) == set(NAMES) - {"shop.mycompany.com"}

    allowed = ListenerCertificate(
        CertificateAuthority(tmp_path / "allowed-ca", allowed=["shop.mycompany.com"]),
        names=NAMES,
        ip_addresses=["127.0.0.1"],
        directory=tmp_path / "allowed-certs",
    )
    await allowed.start()
    assert allowed.left_out == []
    assert certified_names(allowed) == set(NAMES)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_runtime_options(parser)
    return parser.parse_args(list(argv))


def test_ca_allow_takes_names_below_a_public_suffix(tmp_path: Path) -> None:
    args = parse("--ca-allow", "Shop.MyCompany.com.", "--ca-allow", "*.api.mycompany.com")
    config = config_from_args(args, spec_path=tmp_path / "f.yaml", state_dir=tmp_path / "s")
    assert config.ca_allowed == ("shop.mycompany.com", "api.mycompany.com")
    assert config_from_args(parse(), spec_path=tmp_path, state_dir=tmp_path).ca_allowed == ()


@pytest.mark.parametrize(
    ("name", "why"),
    [("com", "public suffix"), ("*.co.uk", "public suffix"), ("shop_1.com", "not a DNS name")],
)
def test_ca_allow_refuses_a_suffix_or_a_non_name(tmp_path: Path, name: str, why: str) -> None:
    with pytest.raises(ConfigError, match=rf"--ca-allow '{re.escape(name)}': .*{why}"):
        config_from_args(parse("--ca-allow", name), spec_path=tmp_path, state_dir=tmp_path)
