"""TLS of HTTPS listeners: the listener certificate and ELB security policies, for Caddy.

    https_load_balancers(spec)        # ["public"]: they need a certificate
    certificate_name(chain)           # "fargo.example.com": used when a client sends no SNI
    certificates(chain, key)          # Caddy's ``tls`` app, the certificate tagged for listeners
    tls_connection_policy("ELBSecurityPolicy-TLS13-1-2-2021-06", "fargo.example.com")

An ``ELBSecurityPolicy-TLS13-1-3-*`` policy means TLS 1.3 only; any other (or none)
means TLS 1.2 and 1.3 with the TLS 1.2 suites below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509

from fargo.local.elb.errors import ValidationError
from fargo.spec.model import Spec

JSON = dict[str, Any]

# ELBSecurityPolicy-TLS13-1-2-*: TLS 1.2 with ECDHE and AES-GCM only (the "Res" subset of
# the 2021-06 policy; its CBC suites are left out). Go fixes the TLS 1.3 suites itself
# (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), which are the policy's TLS 1.3 suites.
TLS12_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
)
CERTIFICATE_TAG = "fargo-listener"


def https_load_balancers(spec: Spec) -> list[str]:
    """The load balancers of ``spec`` with an HTTPS listener."""
    return [
        name
        for name, lb in spec.load_balancers.items()
        if any(listener.protocol == "HTTPS" for listener in lb.listeners)
    ]


def certificates(chain: Path, key: Path) -> JSON:
    """Caddy's ``tls`` app: the listener certificate, tagged for `tls_connection_policy`."""
    return {
        "certificates": {
            "load_files": [{"certificate": str(chain), "key": str(key), "tags": [CERTIFICATE_TAG]}]
        }
    }


def tls_connection_policy(ssl_policy: str | None, server_name: str | None) -> JSON:
    """The Caddy TLS connection policy for an ELB security policy (TLS 1.2 or 1.3 minimum)."""
    policy: JSON = {
        "certificate_selection": {"any_tag": [CERTIFICATE_TAG]},
        "alpn": ["h2", "http/1.1"],
    }
    if ssl_policy is not None and "-1-3-" in ssl_policy:
        policy["protocol_min"] = "tls1.3"
    else:
        policy["protocol_min"] = "tls1.2"
        policy["cipher_suites"] = list(TLS12_CIPHER_SUITES)
    if server_name:
        # Clients that connect by IP send no SNI (or one the certificate lacks).
        policy["default_sni"] = server_name
        policy["fallback_sni"] = server_name
    return policy


def certificate_name(chain: Path) -> str | None:
    """A name the listener certificate covers, for clients that send no SNI."""
    try:
        certificate = x509.load_pem_x509_certificate(chain.read_bytes())
    except (OSError, ValueError) as err:
        raise ValidationError(f"cannot read the listener certificate {chain}: {err}") from err
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for name in names.get_values_for_type(x509.DNSName):
        # A wildcard covers any one label, so ask for one under it.
        return "lb" + name[1:] if name.startswith("*.") else name
    addresses = names.get_values_for_type(x509.IPAddress)
    return str(addresses[0]) if addresses else None
