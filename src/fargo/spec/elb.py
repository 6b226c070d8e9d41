"""Load balancer part of the spec: ALBs, listeners, rules, conditions, actions, target groups.

Field names follow the ELBv2 API (``path_pattern``, ``fixed_response``,
``deregistration_delay``), snake_cased for YAML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from fargo.spec import defaults, domains
from fargo.spec.base import Model

Port = Annotated[int, Field(ge=1, le=65535)]


def _not_a_public_suffix(value: object) -> object:
    # Before the pattern: "com" should hear it is a public suffix, not "match pattern".
    if isinstance(value, str):
        reason = domains.too_broad(value.strip())
        if reason is not None:
            raise ValueError(reason)
    return value


# A certificate's DNS name: lower case, a wildcard only as the first label, never a public
# suffix nor all of one (`fargo.spec.domains`): the twin's CA may sign what it names.
CertificateName = Annotated[
    str,
    Field(pattern=r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", max_length=253),
    BeforeValidator(_not_a_public_suffix),
]


class HealthCheck(Model):
    """A target group's health check (ELBv2 ``HealthCheck*`` attributes)."""

    path: str = Field(defaults.HEALTH_CHECK_PATH, pattern=r"^/", max_length=1024)
    interval: int = Field(defaults.HEALTH_CHECK_INTERVAL_SECONDS, ge=5, le=300)
    timeout: int = Field(defaults.HEALTH_CHECK_TIMEOUT_SECONDS, ge=2, le=120)
    healthy_threshold: int = Field(defaults.HEALTHY_THRESHOLD, ge=2, le=10)
    unhealthy_threshold: int = Field(defaults.UNHEALTHY_THRESHOLD, ge=2, le=10)
    matcher: str = Field(
        defaults.HEALTH_CHECK_MATCHER,
        pattern=r"^[1-5][0-9]{2}(-[1-5][0-9]{2})?(,[1-5][0-9]{2}(-[1-5][0-9]{2})?)*$",
        description="HTTP codes: '200', '200,204' or '200-299'.",
    )

    @field_validator("matcher")
    @classmethod
    def _matcher_codes(cls, matcher: str) -> str:
        for part in matcher.split(","):
            low, _, high = part.partition("-")
            if not 200 <= int(low) <= int(high or low) <= 499:
                raise ValueError(f"matcher {matcher!r}: ALB accepts codes 200 to 499")
        return matcher

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthCheck:
        if self.timeout >= self.interval:
            raise ValueError(
                f"timeout ({self.timeout}s) must be smaller than interval ({self.interval}s)"
            )
        return self

    def matches(self, status: int) -> bool:
        """Whether an HTTP status counts as healthy under ``matcher``."""
        for part in self.matcher.split(","):
            low, _, high = part.partition("-")
            if int(low) <= status <= int(high or low):
                return True
        return False


class TargetGroup(Model):
    """An ``ip`` target group; ECS services register their tasks into it."""

    protocol: Literal["HTTP"] = "HTTP"
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    deregistration_delay: int = Field(defaults.DEREGISTRATION_DELAY_SECONDS, ge=0, le=3600)


class QueryStringPair(Model):
    key: str | None = None
    value: str


class HttpHeaderCondition(Model):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    values: list[str] = Field(min_length=1)


class RuleCondition(Model):
    """One ALB rule condition; exactly one field is set. Values in one condition are OR'ed."""

    path_pattern: list[str] | None = Field(None, min_length=1)
    host_header: list[str] | None = Field(None, min_length=1)
    http_header: HttpHeaderCondition | None = None
    http_request_method: list[str] | None = Field(None, min_length=1)
    query_string: list[QueryStringPair] | None = Field(None, min_length=1)
    source_ip: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> RuleCondition:
        _exactly_one_field(self, "condition")
        return self

    @property
    def field(self) -> str:
        return _set_fields(self)[0]

    def value_count(self) -> int:
        value = getattr(self, self.field)
        return len(value.values) if isinstance(value, HttpHeaderCondition) else len(value)


class WeightedTargetGroup(Model):
    target_group: str
    weight: int = Field(1, ge=0, le=999)


class ForwardConfig(Model):
    target_groups: list[WeightedTargetGroup] = Field(min_length=1, max_length=5)


class RedirectAction(Model):
    """ELBv2 redirect.

    ``#{protocol}``, ``#{host}``, ``#{port}``, ``#{path}``, ``#{query}`` keep the request's value.
    """

    protocol: Literal["HTTP", "HTTPS", "#{protocol}"] = "#{protocol}"
    host: str = "#{host}"
    port: str = "#{port}"
    path: str = "/#{path}"
    query: str = "#{query}"
    status_code: Literal["HTTP_301", "HTTP_302"] = "HTTP_301"


class FixedResponseAction(Model):
    """ALB's fixed response; a redirect is its own action, so no 3XX status here."""

    status_code: int = Field(ge=200, le=599, description="2XX, 4XX or 5XX (ALB refuses 3XX)")
    content_type: Literal[
        "text/plain", "text/css", "text/html", "application/javascript", "application/json"
    ] = "text/plain"
    message_body: str = Field("", max_length=1024)

    @field_validator("status_code")
    @classmethod
    def _not_a_redirect(cls, status: int) -> int:
        if 300 <= status <= 399:
            raise ValueError(
                f"status {status}: ALB fixed responses are 2XX, 4XX or 5XX; use a redirect action"
            )
        return status


class Action(Model):
    """A listener or rule action; exactly one of ``forward``, ``redirect``, ``fixed_response``.

    ``forward`` takes a target group name, or ``{target_groups: [{target_group, weight}]}``.
    """

    forward: str | ForwardConfig | None = None
    redirect: RedirectAction | None = None
    fixed_response: FixedResponseAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        _exactly_one_field(self, "action")
        return self

    @property
    def type(self) -> str:
        return _set_fields(self)[0]

    def weighted_target_groups(self) -> list[WeightedTargetGroup]:
        """The forward action's target groups with weights (a plain forward has weight 1)."""
        if isinstance(self.forward, str):
            return [WeightedTargetGroup(target_group=self.forward)]
        if isinstance(self.forward, ForwardConfig):
            return list(self.forward.target_groups)
        return []


class ListenerRule(Model):
    priority: int = Field(ge=defaults.RULE_PRIORITY_MIN, le=defaults.RULE_PRIORITY_MAX)
    conditions: list[RuleCondition] = Field(min_length=1)
    action: Action


class Listener(Model):
    port: Port
    protocol: Literal["HTTP", "HTTPS"]
    ssl_policy: str | None = None
    default_action: Action
    rules: list[ListenerRule] = Field(default_factory=list)

    @field_validator("ssl_policy")
    @classmethod
    def _modern_tls(cls, policy: str | None) -> str | None:
        # A field validator, so the error points at ssl_policy rather than the whole listener.
        if policy is not None and policy not in defaults.ALLOWED_TLS_POLICIES:
            raise ValueError(
                f"ssl_policy {policy!r} allows TLS older than 1.2 or is unknown; "
                f"use {defaults.TLS_POLICY!r}"
            )
        return policy

    @model_validator(mode="after")
    def _tls(self) -> Listener:
        if self.protocol == "HTTPS":
            if self.ssl_policy is None:
                self.ssl_policy = defaults.TLS_POLICY
        elif self.ssl_policy is not None:
            raise ValueError("ssl_policy applies to HTTPS listeners only")
        return self

    def rules_by_priority(self) -> list[ListenerRule]:
        return sorted(self.rules, key=lambda rule: rule.priority)


class Certificate(Model):
    """The listener certificate.

    Issued by ACM for ``domain`` (DNS-validated in ``hosted_zone``), or imported by ``arn``.
    ``hosted_zone_id`` pins the Route 53 zone's id; without it the cloud takes the id as a
    stack parameter that `fargo deploy` looks up by the zone's name.
    """

    domain: CertificateName
    hosted_zone: str | None = None
    hosted_zone_id: str | None = Field(
        None,
        pattern=r"^Z[A-Z0-9]{1,31}$",
        description="Route 53 hosted zone id of hosted_zone (e.g. Z0123456789ABCDEFGHIJ).",
    )
    arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$")
    subject_alternative_names: list[CertificateName] = Field(
        default_factory=list,
        description="More names for the certificate, each like domain (inside hosted_zone "
        "when one is given).",
    )

    @model_validator(mode="after")
    def _zone_id_needs_zone(self) -> Certificate:
        if self.hosted_zone_id is not None and self.hosted_zone is None:
            raise ValueError("hosted_zone_id needs hosted_zone (the zone's name) too")
        if self.hosted_zone is not None and not (
            self.domain == self.hosted_zone or self.domain.endswith("." + self.hosted_zone)
        ):
            raise ValueError(
                f"domain {self.domain!r} is not inside hosted_zone {self.hosted_zone!r}"
            )
        return self


class AccessLogs(Model):
    enabled: bool = True
    retention_days: int = Field(90, ge=1)


# AWS managed rule groups for WAF (``waf.managed_rule_groups``); the default set guards
# against the OWASP top ten, known bad inputs (Log4Shell among them) and addresses AWS
# has seen attack.
WafRuleGroup = Literal[
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesAnonymousIpList",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesLinuxRuleSet",
    "AWSManagedRulesUnixRuleSet",
    "AWSManagedRulesAdminProtectionRuleSet",
    "AWSManagedRulesBotControlRuleSet",
]


def _default_rule_groups() -> list[WafRuleGroup]:
    return [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ]


class Waf(Model):
    """An AWS WAF web ACL on the load balancer: requests a managed rule group blocks get a
    403 before they reach a target. Only in the cloud: the twin does not filter."""

    managed_rule_groups: list[WafRuleGroup] = Field(
        default_factory=_default_rule_groups, min_length=1
    )
    log_retention_days: int = Field(
        30, ge=1, description="Days the web ACL's request log (CloudWatch Logs) is kept."
    )

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_period(cls, days: int) -> int:
        if days not in defaults.CLOUDWATCH_RETENTION_DAYS:
            raise ValueError(
                f"CloudWatch Logs keeps logs for one of "
                f"{', '.join(map(str, defaults.CLOUDWATCH_RETENTION_DAYS))} days; found {days}"
            )
        return days


class LoadBalancer(Model):
    scheme: Literal["internet-facing", "internal"]
    certificate: Certificate | None = None
    listeners: list[Listener] = Field(min_length=1)
    idle_timeout: int = Field(
        defaults.IDLE_TIMEOUT_SECONDS,
        ge=1,
        le=4000,
        description="Seconds a connection may stay idle; must stay below the keep_alive of "
        "every service in a target group this load balancer forwards to.",
    )
    access_logs: AccessLogs = Field(default_factory=AccessLogs)
    waf: Waf | None = None

    @model_validator(mode="after")
    def _certificate_for_https(self) -> LoadBalancer:
        if any(lst.protocol == "HTTPS" for lst in self.listeners) and self.certificate is None:
            raise ValueError("an HTTPS listener needs a certificate on its load balancer")
        return self

    def forwarded_target_groups(self) -> list[str]:
        """The target groups a listener's default action or rule forwards to, each once."""
        groups: dict[str, None] = {}
        for listener in self.listeners:
            for action in [listener.default_action, *(rule.action for rule in listener.rules)]:
                groups.update(
                    dict.fromkeys(w.target_group for w in action.weighted_target_groups())
                )
        return list(groups)


def _set_fields(model: Model) -> list[str]:
    return [name for name in type(model).model_fields if getattr(model, name) is not None]


def _exactly_one_field(model: Model, kind: str) -> None:
    chosen = _set_fields(model)
    if len(chosen) != 1:
        options = ", ".join(type(model).model_fields)
        found = ", ".join(chosen) or "none"
        article = "an" if kind[0] in "aeiou" else "a"
        raise ValueError(f"{article} {kind} takes exactly one of {options}; found {found}")


@dataclass(frozen=True)
class Request:
    """What a listener rule can look at: the input of both worlds' rule evaluators.

    ``path`` is the percent-decoded path (what Caddy's matchers see); ``query`` the raw
    query string without ``?``; ``host`` the Host header (a port is ignored);
    ``headers`` (name, value) pairs, a name may repeat.
    """

    method: str = "GET"
    path: str = "/"
    query: str = ""
    host: str = "localhost"
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)
    source_ip: str = "127.0.0.1"
