"""Which DNS names a certificate may be for: never a public suffix, nor all of one.

A certificate name decides what the twin's local CA may sign: the CA is created
name-constrained to the certificate's names (`fargo.local.acm`), so
``subject_alternative_names: ["*.com"]`` would make a CA that can sign every
``.com`` site for whoever reads its key. ACM refuses such names too. A name (or a
wildcard's base, ``*.shop.example.com`` → ``shop.example.com``) must therefore be
a registrable domain or below it (``shop.co.uk``, not ``co.uk``), after the Public
Suffix List the ``publicsuffixlist`` package ships (read offline, when first needed).

The reserved names (`RESERVED_DNS_NAMES`: ``localhost``, ``*.test``, ``*.internal``,
``example.com``...) belong to nobody on the public internet; any name under them is
fine, and the local CA may always sign them.

Any other name is a public one — most specs name their owner's own domain, and who owns
a domain cannot be told offline. ACM needs no more; the twin's local CA signs it only
when allowed (`fargo up --ca-allow NAME`, `fargo.local.acm.authority`), and `fargo up`
warns that it leaves it out of the listener certificate otherwise (`local_ca_reach`).
An allowed CA is constrained to exactly those names (and the names under them), never
to their parent domain.

    too_broad("*.co.uk")        # "'*.co.uk' covers every name under the public suffix 'co.uk'..."
    too_broad("shop.co.uk")     # None
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from fargo.spec.errors import Loc, Problem

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

    from fargo.spec.model import Spec

# Names (each with all its subdomains) reserved from public registration, which the
# twin uses for itself (localhost, *.elb.fargo.internal, microservice.local) and which
# specs and tests use: RFC 6761 (localhost, test, example, invalid), RFC 2606
# (example.com/.net/.org), RFC 6762 (local), ICANN's .internal, RFC 8375 (home.arpa).
RESERVED_DNS_NAMES: Final = (
    "localhost",
    "test",
    "example",
    "invalid",
    "local",
    "internal",
    "home.arpa",
    "example.com",
    "example.net",
    "example.org",
)


_HOST_NAME = re.compile(r"^([a-z0-9-]+\.)*[a-z0-9-]+$")


def base_name(name: str) -> str:
    """A certificate name as the DNS name it stands for: no wildcard, trailing dot or
    capitals (``*.Shop.example.com.`` → ``shop.example.com``)."""
    return name.removeprefix("*.").rstrip(".").lower()


def allow_command(name: str) -> str:
    """The command that lets the twin's local CA sign ``name`` (`fargo.local.acm`)."""
    return f"fargo up --ca-allow {base_name(name)}"


def host_name(name: str) -> bool:
    """Whether ``name`` (lowercase, no wildcard) is written as a DNS host name."""
    return bool(_HOST_NAME.match(name))


def within(name: str, parent: str) -> bool:
    """Whether ``name`` is ``parent`` or a name under it."""
    return name == parent or name.endswith("." + parent)


def reserved(name: str) -> bool:
    """Whether ``name`` (a wildcard's base) lies in a name reserved from registration."""
    base = base_name(name)
    return any(within(base, parent) for parent in RESERVED_DNS_NAMES)


def too_broad(name: str) -> str | None:
    """Why ``name`` may not be a certificate name (it is, or covers all of, a public
    suffix), or None when it may."""
    base = base_name(name)
    if not host_name(base) or reserved(base):
        return None  # not a DNS name at all: the name's pattern says so
    if _public_suffixes().is_public(base):
        if name.startswith("*."):
            return (
                f"{name!r} covers every name under the public suffix {base!r}, which anyone "
                "may register names in: no certificate may be for all of them; use a name "
                f"you own under it, e.g. *.shop.{base}"
            )
        return (
            f"{name!r} is a public suffix (a top-level domain or one like co.uk), which "
            f"anyone may register names in: no certificate may be for it; use a name you "
            f"own under it, e.g. shop.{base}"
        )
    return None


def registrable(name: str) -> str | None:
    """The registrable domain ``name`` lies in (``shop.co.uk`` for ``www.shop.co.uk``)."""
    found = _public_suffixes().privatesuffix(base_name(name))
    return str(found) if found else None


def local_ca_reach(spec: Spec) -> Iterator[Problem]:
    """The twin's warnings: certificate names outside the reserved ones, which the local CA
    signs only when allowed (no one can tell offline who owns a registrable domain)."""
    for name, lb in spec.load_balancers.items():
        cert = lb.certificate
        if cert is None:
            continue
        at: Loc = ("load_balancers", name, "certificate")
        named: list[tuple[Loc, str]] = [((*at, "domain"), cert.domain)]
        named += [
            ((*at, "subject_alternative_names", index), san)
            for index, san in enumerate(cert.subject_alternative_names)
        ]
        for loc, value in named:
            if reserved(value):
                continue
            yield Problem(
                loc,
                f"{value!r} is a public name: the twin's local CA signs it only when allowed, "
                "and leaves it out of the twin's certificate otherwise (whoever reads the "
                "CA's key could impersonate the name to whoever trusts the CA)",
                hint=f"if the name is yours, start the twin with {allow_command(value)} "
                "(a CA made without it never grows: delete the "
                "state folder's ca/ first, and trust the new CA); or use a reserved name for "
                "the twin (e.g. shop.example.com, shop.test)",
            )


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    # Imported and parsed on first use (about 50 ms): only specs with certificates pay.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()
