"""Certificate names (fargo.spec.domains): never a public suffix nor all of one, since the
twin's local CA may sign what they name; every name checked like the domain."""

from __future__ import annotations

import pytest

from fargo.spec import parse_spec
from fargo.spec.domains import registrable, too_broad

CERTIFICATE = "certificate: {domain: shop.example.com}"


def _with_names(shop, names: str):
    return shop.edit(
        CERTIFICATE,
        f"certificate: {{domain: shop.example.com, subject_alternative_names: {names}}}",
    )


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            '["*.com"]',
            "'*.com' covers every name under the public suffix 'com', which anyone may "
            "register names in: no certificate may be for all of them; use a name you own "
            "under it, e.g. *.shop.com",
        ),
        (
            '["com"]',
            "'com' is a public suffix (a top-level domain or one like co.uk), which anyone may "
            "register names in: no certificate may be for it; use a name you own under it, "
            "e.g. shop.com",
        ),
        (
            '["*.co.uk"]',
            "'*.co.uk' covers every name under the public suffix 'co.uk', which anyone may "
            "register names in: no certificate may be for all of them; use a name you own "
            "under it, e.g. *.shop.co.uk",
        ),
        (
            '["github.io"]',  # a private suffix of the list: anyone's pages live under it
            "'github.io' is a public suffix (a top-level domain or one like co.uk), which "
            "anyone may register names in: no certificate may be for it; use a name you own "
            "under it, e.g. shop.github.io",
        ),
        ('["Shop Example"]', "String should match pattern "),
        ('["*.*.example.com"]', "String should match pattern "),
    ],
    ids=["wildcard of a TLD", "a TLD", "wildcard of co.uk", "github.io", "spaces", "two stars"],
)
def test_a_subject_alternative_name_is_checked_like_the_domain(
    shop, names: str, message: str
) -> None:
    [problem] = _with_names(shop, names).problems()

    assert problem.field_path == "load_balancers.edge.certificate.subject_alternative_names[0]"
    assert problem.message.startswith(message)


def test_the_domain_itself_may_not_be_a_public_suffix(shop) -> None:
    [problem] = shop.edit(CERTIFICATE, "certificate: {domain: co.uk}").problems()

    assert problem.field_path == "load_balancers.edge.certificate.domain"
    assert problem.message.startswith("'co.uk' is a public suffix")


@pytest.mark.parametrize(
    "names",
    [
        '["*.shop.example.com", "api.shop.co.uk", "*.shop.co.uk"]',
        # reserved: nobody owns them on the internet
        '["*.shop.internal", "api.shop.test", "*.example.com"]',
    ],
    ids=["registrable and below", "reserved names"],
)
def test_names_a_user_can_own_are_taken(shop, names: str) -> None:
    spec = parse_spec(_with_names(shop, names).text)

    certificate = spec.load_balancers["edge"].certificate
    assert certificate is not None and certificate.subject_alternative_names


def test_registrable_domain() -> None:
    assert registrable("www.shop.co.uk") == "shop.co.uk"
    assert registrable("*.api.shop.example.com") == "example.com"
    assert registrable("co.uk") is None
    assert too_broad("shop.co.uk") is None


def test_the_twin_warns_that_its_ca_can_sign_a_name_outside_the_reserved_ones(shop) -> None:
    from fargo.spec import check_spec_text

    text = _with_names(shop, '["www.google.com", "api.shop.test"]').text
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"

    twin = check_spec_text(text, "shop.yaml", world="twin")
    cloud = check_spec_text(
        text.replace("{domain: shop.example.com,", f"{{domain: shop.example.com, arn: {arn},"),
        "shop.yaml",
        world="cloud",
    )

    [warning] = [w for w in twin.warnings if "local CA" in w.message]
    assert warning.field_path == "load_balancers.edge.certificate.subject_alternative_names[0]"
    assert warning.message == (
        "'www.google.com' is a public name: the twin's local CA signs it only when allowed, "
        "and leaves it out of the twin's certificate otherwise (whoever reads the "
        "CA's key could impersonate the name to whoever trusts the CA)"
    )
    assert "fargo up --ca-allow www.google.com" in str(warning.hint)
    # ACM involves no local CA: the cloud has nothing to warn about.
    assert cloud.warnings == ()
