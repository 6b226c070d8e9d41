"""A service's ``secrets:`` (fargo.spec.secrets, checks, local_values): what each source
means, every wrong input located in the file, and the twin's local value required."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fargo.spec import SpecInvalid, check_spec_text, parse_spec
from fargo.spec.loader import CLOUD_TAKES_IT
from fargo.spec.secrets import Arn, SecretReference, partition_of

API_URL = '      API_URL: "http://${lb:edge.dns_name}"\n'
# The spec tests' shop is in eu-west-1 (partition aws).
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db-AbCdEf"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def with_secrets(shop, secrets: str):
    """The shop whose service ``web`` has these secrets (YAML lines under ``secrets:``)."""
    block = "".join(f"      {line}\n" for line in secrets.strip("\n").splitlines())
    return shop.edit(API_URL, f"{API_URL}    secrets:\n{block}")


@pytest.mark.parametrize(
    ("source", "reference"),
    [
        (
            "ssm_parameter: /shop/db-password",
            SecretReference("ssm", "parameter/shop/db-password"),
        ),
        ("ssm_parameter: db-password", SecretReference("ssm", "parameter/db-password")),
        (
            "ssm_parameter: arn:aws:ssm:us-east-1:123456789012:parameter/shop/db",
            SecretReference(
                "ssm",
                "parameter/shop/db",
                Arn("aws", "ssm", "us-east-1", "123456789012", "parameter/shop/db"),
            ),
        ),
        (
            f"secrets_manager: {SECRET_ARN}",
            SecretReference(
                "secretsmanager",
                "secret:shop/db-AbCdEf",
                Arn("aws", "secretsmanager", "eu-west-1", "123456789012", "secret:shop/db-AbCdEf"),
            ),
        ),
        (
            f'secrets_manager: "{SECRET_ARN}:password::"',
            SecretReference(
                "secretsmanager",
                "secret:shop/db-AbCdEf",
                Arn("aws", "secretsmanager", "eu-west-1", "123456789012", "secret:shop/db-AbCdEf"),
                selector=":password::",
            ),
        ),
        (
            "secrets_manager: shop/db",
            SecretReference("secretsmanager", "secret:shop/db", complete=False),
        ),
        (
            'secrets_manager: "shop/db::AWSPREVIOUS:"',
            SecretReference(
                "secretsmanager", "secret:shop/db", complete=False, selector="::AWSPREVIOUS:"
            ),
        ),
        (  # an ARN without the random suffix: a partial ARN, granted with the wildcard
            "secrets_manager: arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db",
            SecretReference(
                "secretsmanager",
                "secret:shop/db",
                Arn("aws", "secretsmanager", "eu-west-1", "123456789012", "secret:shop/db"),
                complete=False,
            ),
        ),
    ],
)
def test_a_secrets_source_is_parsed_as_ecs_reads_it(
    shop, source: str, reference: SecretReference
) -> None:
    spec = parse_spec(
        with_secrets(shop, f"DB_PASSWORD: {{{source}, local: {{env: SHOP_DB}}}}").text
    )

    secret = spec.services["web"].secrets["DB_PASSWORD"]
    assert secret.reference() == reference
    assert secret.local is not None and secret.local.env == "SHOP_DB"


def test_a_customer_managed_key_and_a_file_source(shop) -> None:
    spec = parse_spec(
        with_secrets(
            shop,
            f"""
TOKEN:
  secrets_manager: {SECRET_ARN}
  kms_key: {KEY_ARN}
  local: {{file: .secrets/token}}
""",
        ).text
    )

    secret = spec.services["web"].secrets["TOKEN"]
    assert secret.key() == Arn(
        "aws", "kms", "eu-west-1", "123456789012", "key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    assert secret.local is not None and secret.local.file == ".secrets/token"


@dataclass(frozen=True)
class Bad:
    secret: str  # the YAML line(s) under ``secrets:``
    field: str  # the field path the error names, after services.web.secrets.
    at: str  # text in the edited file where the error points
    message: str


LOCAL = "local: {env: X}"
BAD = {
    "invalid name": Bad(
        f"2FA_SEED: {{ssm_parameter: /a, {LOCAL}}}",
        "2FA_SEED",
        "2FA_SEED:",
        "'2FA_SEED' is not a valid environment variable name",
    ),
    "no source": Bad(
        f"A: {{{LOCAL}}}",
        "A",
        "A:",
        "give exactly one of ssm_parameter (an SSM parameter's name or ARN) and "
        "secrets_manager (a Secrets Manager secret's ARN or name)",
    ),
    "two sources": Bad(
        f"A: {{ssm_parameter: /a, secrets_manager: b, {LOCAL}}}",
        "A",
        "A:",
        "give exactly one of ssm_parameter (an SSM parameter's name or ARN) and "
        "secrets_manager (a Secrets Manager secret's ARN or name)",
    ),
    "parameter name with a space": Bad(
        f"A: {{ssm_parameter: '/db password', {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "a parameter name has only a-z A-Z 0-9 _ . - and /, found ' '",
    ),
    "hierarchy without its root": Bad(
        f"A: {{ssm_parameter: shop/db, {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "a parameter in a hierarchy is named from its root: /shop/db (with the leading /)",
    ),
    "empty level": Bad(
        f"A: {{ssm_parameter: /shop//db, {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "'/shop//db' has an empty level ('//' or a trailing '/')",
    ),
    "too deep": Bad(
        f"A: {{ssm_parameter: {'/l' * 16}, {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "a parameter hierarchy is at most 15 levels deep",
    ),
    "an ARN of another service": Bad(
        f"A: {{ssm_parameter: '{SECRET_ARN}', {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "ssm_parameter takes an ARN of service 'ssm', found 'secretsmanager'",
    ),
    "no partition": Bad(
        f"A: {{ssm_parameter: 'arn:amazon:ssm:eu-west-1:123456789012:parameter/a', {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "'amazon' is not an AWS partition (aws, aws-cn, aws-us-gov, …)",
    ),
    "no region": Bad(
        f"A: {{ssm_parameter: 'arn:aws:ssm:europe:123456789012:parameter/a', {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "'europe' in the ARN is not a region (like us-east-1)",
    ),
    "no account": Bad(
        f"A: {{ssm_parameter: 'arn:aws:ssm:eu-west-1:1234:parameter/a', {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "'1234' in the ARN is not an account id (12 digits)",
    ),
    "not an ARN": Bad(
        f"A: {{ssm_parameter: 'arn:aws:ssm', {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "'arn:aws:ssm' is not an ARN (arn:PARTITION:ssm:REGION:ACCOUNT:RESOURCE)",
    ),
    "an SSM ARN of no parameter": Bad(
        f"A: {{ssm_parameter: 'arn:aws:ssm:eu-west-1:123456789012:document/a', {LOCAL}}}",
        "A.ssm_parameter",
        "ssm_parameter:",
        "'document/a' is not a parameter: the ARN ends with parameter/NAME "
        "(aws ssm get-parameter --name NAME --query Parameter.ARN)",
    ),
    "a Secrets Manager ARN of no secret": Bad(
        f"A: {{secrets_manager: 'arn:aws:secretsmanager:eu-west-1:123456789012:x', {LOCAL}}}",
        "A.secrets_manager",
        "secrets_manager:",
        "'x' is not a secret: the ARN ends with secret:NAME-XXXXXX "
        "(aws secretsmanager describe-secret --secret-id NAME --query ARN)",
    ),
    "a selector of two fields": Bad(
        f"A: {{secrets_manager: '{SECRET_ARN}:password:', {LOCAL}}}",
        "A.secrets_manager",
        "secrets_manager:",
        "after the secret come three fields, as in ECS's valueFrom: "
        "shop/db-AbCdEf:JSON_KEY:VERSION_STAGE:VERSION_ID (empty ones too: "
        "shop/db-AbCdEf:password::)",
    ),
    "a secret name with a space": Bad(
        f"A: {{secrets_manager: 'db password', {LOCAL}}}",
        "A.secrets_manager",
        "secrets_manager:",
        "'db password' is not a secret name (1-512 characters of a-z A-Z 0-9 / _ + = . @ -)",
    ),
    "a key alias": Bad(
        f"A: {{ssm_parameter: /a, kms_key: alias/shop, {LOCAL}}}",
        "A.kms_key",
        "kms_key:",
        "'alias/shop' is not a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID); an "
        "alias or a bare key id cannot be granted kms:Decrypt "
        "(aws kms describe-key --key-id alias/NAME --query KeyMetadata.Arn)",
    ),
    "a key alias ARN": Bad(
        "A: {ssm_parameter: /a, kms_key: 'arn:aws:kms:eu-west-1:123456789012:alias/shop', "
        f"{LOCAL}}}",
        "A.kms_key",
        "kms_key:",
        "'arn:aws:kms:eu-west-1:123456789012:alias/shop' is not a KMS key ARN "
        "(arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID); an alias or a bare key id cannot be "
        "granted kms:Decrypt (aws kms describe-key --key-id alias/NAME --query "
        "KeyMetadata.Arn)",
    ),
    "both local sources": Bad(
        "A: {ssm_parameter: /a, local: {env: X, file: x}}",
        "A.local",
        "local:",
        "give exactly one of env (a variable of fargo up's environment) and file "
        "(a git-ignored file)",
    ),
    "no local source": Bad(
        "A: {ssm_parameter: /a, local: {}}",
        "A.local",
        "local:",
        "give exactly one of env (a variable of fargo up's environment) and file "
        "(a git-ignored file)",
    ),
    "an invalid local variable": Bad(
        "A: {ssm_parameter: /a, local: {env: MY-VAR}}",
        "A.local.env",
        "env: MY-VAR",
        "'MY-VAR' is not a valid environment variable name",
    ),
    "an unknown field": Bad(
        f"A: {{ssm_parameter: /a, kms_key_id: x, {LOCAL}}}",
        "A.kms_key_id",
        "kms_key_id:",
        "unknown field 'kms_key_id'",
    ),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_a_wrong_secret_is_refused_at_its_line(shop, case: Bad) -> None:
    bad = with_secrets(shop, case.secret)

    [problem] = bad.problems()

    assert problem.field_path == f"services.web.secrets.{case.field}"
    assert f"{problem.line}:{problem.column}" == bad.at(case.at)
    assert problem.message == case.message


@dataclass(frozen=True)
class Clash:
    secret: str
    field: str
    message: str
    hint: str


CLASHES = {
    "a name ECS sets": Clash(
        f"AWS_REGION: {{ssm_parameter: /a, {LOCAL}}}",
        "AWS_REGION",
        "AWS_REGION is reserved: ECS and Fargate set it in every task, or the task role "
        "provides it",
        "pick another name; the task role provides credentials, and ECS sets AWS_REGION",
    ),
    "a name fargo sets": Clash(
        f"HTTP_KEEP_ALIVE_TIMEOUT: {{ssm_parameter: /a, {LOCAL}}}",
        "HTTP_KEEP_ALIVE_TIMEOUT",
        "HTTP_KEEP_ALIVE_TIMEOUT is set by fargo from the service's keep_alive field",
        "set services.web.keep_alive instead",
    ),
    "a name of the environment": Clash(
        f"API_URL: {{ssm_parameter: /a, {LOCAL}}}",
        "API_URL",
        "API_URL is in the service's environment too: a variable is either a plain value "
        "or a secret",
        "remove API_URL from services.web.environment",
    ),
    "another partition": Clash(
        f"A: {{ssm_parameter: 'arn:aws-cn:ssm:cn-north-1:123456789012:parameter/a', {LOCAL}}}",
        "A.ssm_parameter",
        "the secret is in partition aws-cn, the tasks run in eu-west-1 (partition aws): ECS "
        "cannot read across partitions",
        "keep the secret in the aws partition",
    ),
    "a key in another partition": Clash(
        "A: {ssm_parameter: /a, kms_key: "
        "'arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef',"
        f" {LOCAL}}}",
        "A.kms_key",
        "the key is in partition aws-us-gov, the tasks run in eu-west-1 (partition aws)",
        "give the key that encrypts the secret, in the aws partition",
    ),
    "a key in another region": Clash(
        f"A: {{secrets_manager: '{SECRET_ARN}', kms_key: "
        f"'{KEY_ARN.replace('eu-west-1', 'us-east-1')}', {LOCAL}}}",
        "A.kms_key",
        "the key is in us-east-1, the secret in eu-west-1: a KMS key encrypts in its own "
        "region only",
        "give the key in eu-west-1 that encrypts the secret (for a multi-Region key, its "
        "replica there)",
    ),
    "a key in another region than the stack, for a name": Clash(
        f"A: {{ssm_parameter: /a, kms_key: '{KEY_ARN.replace('eu-west-1', 'us-east-1')}', "
        f"{LOCAL}}}",
        "A.kms_key",
        "the key is in us-east-1, the secret in eu-west-1: a KMS key encrypts in its own "
        "region only",
        "give the key in eu-west-1 that encrypts the secret (for a multi-Region key, its "
        "replica there)",
    ),
}


@pytest.mark.parametrize("case", CLASHES.values(), ids=CLASHES.keys())
def test_a_secret_that_clashes_with_the_spec_is_refused(shop, case: Clash) -> None:
    bad = with_secrets(shop, case.secret)

    [problem] = bad.problems()

    assert problem.field_path == f"services.web.secrets.{case.field}"
    assert problem.line is not None and bad.text.splitlines()[problem.line - 1].strip()
    assert (problem.message, problem.hint) == (case.message, case.hint)


def test_a_secret_in_another_region_of_the_partition_is_taken(shop) -> None:
    spec = parse_spec(
        with_secrets(
            shop,
            "A: {ssm_parameter: 'arn:aws:ssm:us-east-1:123456789012:parameter/a', "
            f"kms_key: '{KEY_ARN.replace('eu-west-1', 'us-east-1')}', {LOCAL}}}",
        ).text
    )

    assert spec.services["web"].secrets["A"].reference().region == "us-east-1"


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("eu-west-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
    ],
)
def test_the_partition_of_a_region(region: str, partition: str) -> None:
    assert partition_of(region) == partition


def test_a_secret_without_a_local_value_is_the_twins_error_and_the_clouds_warning(shop) -> None:
    bad = with_secrets(shop, "DB_PASSWORD: {ssm_parameter: /shop/db}")
    deployable = bad.edit(
        "certificate: {domain: shop.example.com}",
        "certificate: {domain: shop.example.com, hosted_zone: example.com}",
    )

    with pytest.raises(SpecInvalid) as caught:
        check_spec_text(deployable.text, deployable.name, world="twin")
    [problem] = caught.value.problems
    assert problem.render(bad.name) == (
        f"shop.yaml:{bad.at('DB_PASSWORD:')}: services.web.secrets.DB_PASSWORD: the twin has "
        "no value for secret DB_PASSWORD: it reads no SSM parameter or Secrets Manager secret "
        "(add local: {env: VARIABLE} (a variable exported in fargo up's environment) or "
        "local: {file: PATH} (a git-ignored file, relative to the spec))"
    )

    [warning] = check_spec_text(deployable.text, deployable.name, world="cloud").warnings
    assert warning.field_path == "services.web.secrets.DB_PASSWORD"
    assert warning.hint is not None and warning.hint.endswith(f"; {CLOUD_TAKES_IT}")
    # What every world takes (load_spec, parse_spec): a warning only.
    assert parse_spec(deployable.text).services["web"].secrets["DB_PASSWORD"].local is None
