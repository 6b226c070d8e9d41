"""A service's secrets: environment variables whose values ECS reads when a task starts,
from SSM Parameter Store or Secrets Manager. ``fargo.yaml`` says where a value lives,
never the value.

    services:
      api:
        secrets:
          DB_PASSWORD:
            ssm_parameter: /shop/db-password  # a name (the stack's account, region) or an ARN
            local: {env: SHOP_DB_PASSWORD}    # the twin: a variable of `fargo up`'s environment
          API_TOKEN:                          # a complete ARN (or a name), ECS's selector
            secrets_manager: arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-AbCdEf:token::
            kms_key: arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
            local: {file: .secrets/api_token} # the twin: this git-ignored file

`Secret.reference` is the parsed source: `fargo.cloud.secrets` renders it as the
container's ``valueFrom`` and the execution role's grants; the twin reads ``local``
(`fargo.local.ecs.secrets`). Formats are checked here; what needs the spec's region
(partitions, the key's region) in `fargo.spec.checks`; what needs the disk or git in
`fargo.spec.local_values`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from fargo.spec.base import Model

# An environment variable name as POSIX shells and ECS take it.
ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Partitions by region prefix; every other region is in "aws".
PARTITIONS_BY_REGION_PREFIX: Final = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
    ("eusc-", "aws-eusc"),
)
PARTITIONS: Final = frozenset({"aws", *(p for _, p in PARTITIONS_BY_REGION_PREFIX)})
REGION: Final = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d$")
ACCOUNT: Final = re.compile(r"^\d{12}$")
ARN: Final = re.compile(
    r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):"
    r"(?P<resource>.*)$"
)
# SSM Parameter Store: names of a-z A-Z 0-9 _ . - and / between levels; hierarchies start at
# "/" and are at most 15 levels deep; at most 1011 characters.
SSM_NAME_CHARS: Final = re.compile(r"^[A-Za-z0-9_./-]+$")
SSM_MAX_DEPTH: Final = 15
SSM_MAX_NAME: Final = 1011
# Secrets Manager: names of 1-512 characters of these; the ARN appends "-" and six random
# characters, which IAM needs (or the wildcard "-??????" for them).
SECRET_NAME: Final = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
SECRET_SUFFIX: Final = re.compile(r"-[A-Za-z0-9]{6}$")
RANDOM_SUFFIX_WILDCARD: Final = "-??????"
KMS_KEY_ID: Final = re.compile(
    r"^key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)
GET_ARN_HINT: Final = {
    "ssm": "aws ssm get-parameter --name NAME --query Parameter.ARN",
    "secretsmanager": "aws secretsmanager describe-secret --secret-id NAME --query ARN",
    "kms": "aws kms describe-key --key-id alias/NAME --query KeyMetadata.Arn",
}

Service = Literal["ssm", "secretsmanager"]


def is_env_name(name: str) -> bool:
    return bool(ENV_NAME.match(name))


def env_name(name: str) -> str:
    """``name`` if it is a valid environment variable name, else ValueError (a validator)."""
    if not is_env_name(name):
        raise ValueError(f"{name!r} is not a valid environment variable name")
    return name


def partition_of(region: str) -> str:
    """The AWS partition ``region`` belongs to (``aws``, ``aws-cn``, ``aws-us-gov``, …)."""
    found = (p for prefix, p in PARTITIONS_BY_REGION_PREFIX if region.startswith(prefix))
    return next(found, "aws")


@dataclass(frozen=True)
class Arn:
    """An ARN's parts; ``resource`` is everything after the account."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


@dataclass(frozen=True)
class SecretReference:
    """Where ECS reads a secret: ``arn`` None means the stack's partition, region and account
    (the spec gave a name). ``resource`` is the ARN's resource part (``parameter/shop/db``,
    ``secret:api-AbCdEf``); ``complete`` False: a Secrets Manager name without its random
    suffix; ``selector`` is ECS's ``:json-key:version-stage:version-id`` (or "")."""

    service: Service
    resource: str
    arn: Arn | None = None
    complete: bool = True
    selector: str = ""

    @property
    def region(self) -> str | None:
        """The secret's region; None: the stack's."""
        return self.arn.region if self.arn else None


def parse_arn(text: str, *, service: str, field: str) -> Arn:
    """``text`` as an ARN of ``service``; ValueError saying which part is wrong."""
    match = ARN.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not an ARN (arn:PARTITION:{service}:REGION:ACCOUNT:RESOURCE)"
        )
    arn = Arn(**match.groupdict())
    if arn.partition not in PARTITIONS:
        raise ValueError(f"{arn.partition!r} is not an AWS partition (aws, aws-cn, aws-us-gov, …)")
    if arn.service != service:
        raise ValueError(f"{field} takes an ARN of service {service!r}, found {arn.service!r}")
    if not REGION.match(arn.region):
        raise ValueError(f"{arn.region!r} in the ARN is not a region (like us-east-1)")
    if not ACCOUNT.match(arn.account):
        raise ValueError(f"{arn.account!r} in the ARN is not an account id (12 digits)")
    return arn


def parse_ssm_parameter(text: str) -> SecretReference:
    """A parameter's name or ARN; ValueError with what is wrong."""
    if text.startswith("arn:"):
        arn = parse_arn(text, service="ssm", field="ssm_parameter")
        kind, _, name = arn.resource.partition("/")
        if kind != "parameter" or not name:
            raise ValueError(
                f"{arn.resource!r} is not a parameter: the ARN ends with parameter/NAME "
                f"({GET_ARN_HINT['ssm']})"
            )
        _check_ssm_name(name, hierarchy_prefix="")
        return SecretReference("ssm", arn.resource, arn)
    _check_ssm_name(text, hierarchy_prefix="/")
    # A parameter's ARN names it without its leading "/" (/shop/db and shop/db are one).
    return SecretReference("ssm", "parameter/" + text.removeprefix("/"))


def _check_ssm_name(name: str, *, hierarchy_prefix: str) -> None:
    if not SSM_NAME_CHARS.match(name):
        bad = sorted({ch for ch in name if not SSM_NAME_CHARS.match(ch)})
        raise ValueError(
            f"a parameter name has only a-z A-Z 0-9 _ . - and /, found {' '.join(map(repr, bad))}"
        )
    if len(name) > SSM_MAX_NAME:
        raise ValueError(f"a parameter name is at most {SSM_MAX_NAME} characters")
    if "/" in name and not name.startswith(hierarchy_prefix):
        raise ValueError(
            f"a parameter in a hierarchy is named from its root: /{name} (with the leading /)"
        )
    levels = name.removeprefix(hierarchy_prefix).split("/")
    if "" in levels:
        raise ValueError(f"{name!r} has an empty level ('//' or a trailing '/')")
    if len(levels) > SSM_MAX_DEPTH:
        raise ValueError(f"a parameter hierarchy is at most {SSM_MAX_DEPTH} levels deep")


def parse_secrets_manager(text: str) -> SecretReference:
    """A secret's ARN or name, each optionally followed by ``:json-key:version-stage:
    version-id`` (ECS's ``valueFrom``); ValueError with what is wrong."""
    if text.startswith("arn:"):
        arn = parse_arn(text, service="secretsmanager", field="secrets_manager")
        kind, _, rest = arn.resource.partition(":")
        if kind != "secret" or not rest:
            raise ValueError(
                f"{arn.resource!r} is not a secret: the ARN ends with secret:NAME-XXXXXX "
                f"({GET_ARN_HINT['secretsmanager']})"
            )
        name, selector = _split_selector(rest)
        arn = Arn(arn.partition, arn.service, arn.region, arn.account, f"secret:{name}")
        return SecretReference(
            "secretsmanager",
            arn.resource,
            arn,
            complete=bool(SECRET_SUFFIX.search(name)),
            selector=selector,
        )
    name, selector = _split_selector(text)
    # A name is the secret's ARN without the random suffix, in the stack's account and region.
    return SecretReference("secretsmanager", f"secret:{name}", complete=False, selector=selector)


def _split_selector(text: str) -> tuple[str, str]:
    name, colon, selector = text.partition(":")
    if not SECRET_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a secret name (1-512 characters of a-z A-Z 0-9 / _ + = . @ -)"
        )
    if colon and selector.count(":") != 2:
        raise ValueError(
            f"after the secret come three fields, as in ECS's valueFrom: "
            f"{name}:JSON_KEY:VERSION_STAGE:VERSION_ID (empty ones too: {name}:password::)"
        )
    return name, colon + selector


def parse_kms_key(text: str) -> Arn:
    """A KMS key's ARN (not an alias: IAM authorizes a key by its ARN)."""
    arn = parse_arn(text, service="kms", field="kms_key") if text.startswith("arn:") else None
    if arn is None or not KMS_KEY_ID.match(arn.resource):
        raise ValueError(
            f"{text!r} is not a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID); an "
            f"alias or a bare key id cannot be granted kms:Decrypt ({GET_ARN_HINT['kms']})"
        )
    return arn


class LocalSecret(Model):
    """Where the twin reads a secret's value (it has no SSM or Secrets Manager): exactly one
    of ``env`` and ``file``."""

    env: str | None = Field(
        None, description="A variable of the environment `fargo up` runs in (exported)."
    )
    file: str | None = Field(
        None,
        description="A file, relative to the spec's folder; inside a git work tree it must be "
        "git-ignored. Its content is the value (one trailing newline dropped).",
    )

    @field_validator("env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        return None if name is None else env_name(name)

    @field_validator("file")
    @classmethod
    def _file(cls, path: str | None) -> str | None:
        if path is not None and (not path or "\0" in path):
            raise ValueError("a file path, relative to the spec's folder")
        return path

    @model_validator(mode="after")
    def _one_source(self) -> LocalSecret:
        if (self.env is None) == (self.file is None):
            raise ValueError(
                "give exactly one of env (a variable of fargo up's environment) "
                "and file (a git-ignored file)"
            )
        return self


class Secret(Model):
    """One secret of a service: an SSM parameter or a Secrets Manager secret (exactly one),
    the KMS key that encrypts it if it is customer managed, and the twin's local value."""

    ssm_parameter: str | None = Field(
        None,
        description="An SSM Parameter Store parameter (SecureString): its name, in the stack's "
        "account and region, or its ARN.",
    )
    secrets_manager: str | None = Field(
        None,
        description="A Secrets Manager secret: its complete ARN (…:secret:NAME-AbCdEf) or its "
        "name (the stack's account and region), optionally followed by "
        ":JSON_KEY:VERSION_STAGE:VERSION_ID as in ECS's valueFrom.",
    )
    kms_key: str | None = Field(
        None,
        description="The ARN of the customer managed KMS key that encrypts it; leave it out "
        "for the AWS managed key. The execution role may decrypt with it through SSM or "
        "Secrets Manager only.",
    )
    local: LocalSecret | None = Field(
        None,
        description="The twin's value: {env: VARIABLE} or {file: PATH}. `fargo up` refuses "
        "a secret without one.",
    )

    @field_validator("ssm_parameter")
    @classmethod
    def _ssm_parameter(cls, value: str | None) -> str | None:
        if value is not None:
            parse_ssm_parameter(value)
        return value

    @field_validator("secrets_manager")
    @classmethod
    def _secrets_manager(cls, value: str | None) -> str | None:
        if value is not None:
            parse_secrets_manager(value)
        return value

    @field_validator("kms_key")
    @classmethod
    def _kms_key(cls, value: str | None) -> str | None:
        if value is not None:
            parse_kms_key(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        if (self.ssm_parameter is None) == (self.secrets_manager is None):
            raise ValueError(
                "give exactly one of ssm_parameter (an SSM parameter's name or ARN) and "
                "secrets_manager (a Secrets Manager secret's ARN or name)"
            )
        return self

    @property
    def field(self) -> Literal["ssm_parameter", "secrets_manager"]:
        """The field that names the source."""
        return "ssm_parameter" if self.ssm_parameter is not None else "secrets_manager"

    def reference(self) -> SecretReference:
        if self.ssm_parameter is not None:
            return parse_ssm_parameter(self.ssm_parameter)
        assert self.secrets_manager is not None  # one of the two: `_one_source`
        return parse_secrets_manager(self.secrets_manager)

    def key(self) -> Arn | None:
        return parse_kms_key(self.kms_key) if self.kms_key is not None else None
