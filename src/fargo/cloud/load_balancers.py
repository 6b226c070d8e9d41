"""Application Load Balancers: security group, listeners, rules, certificate, DNS record."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from fargo.cloud import acknowledgements as ack
from fargo.cloud import policy
from fargo.cloud.certificates import ListenerCertificate
from fargo.cloud.listeners import TargetGroups, listener_action, listener_conditions
from fargo.cloud.names import pascal
from fargo.cloud.waf import WebAcl
from fargo.spec.elb import LoadBalancer as LoadBalancerSpec


class LoadBalancer(Construct):
    """One spec load balancer.

    Internet-facing ones sit in the public subnets and admit their listener ports from
    anywhere; internal ones sit in the private subnets and admit nobody until
    `fargo.cloud.security` opens them to the services that call them. HTTPS listeners
    carry the certificate and the spec's TLS policy; invalid header fields are dropped.

    Children: ``security_group``, ``load_balancer``, ``listeners`` (port → listener),
    ``rules`` (``(port, priority)`` → rule), ``certificate``, ``record`` and ``waf`` (or
    None; `fargo.cloud.waf`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        load_balancer: LoadBalancerSpec,
        vpc: ec2.IVpc,
        public_subnets: ec2.SubnetSelection,
        private_subnets: ec2.SubnetSelection,
        target_groups: TargetGroups,
        access_logs: s3.IBucket | None,
    ) -> None:
        super().__init__(scope, id)
        spec = load_balancer
        internet_facing = spec.scheme == "internet-facing"
        self.name = name
        self.spec = spec

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"load balancer {name} ({spec.scheme})",
            allow_all_outbound=False,  # egress to targets is added per target group
        )
        if internet_facing:
            for entry in spec.listeners:
                self.security_group.add_ingress_rule(
                    ec2.Peer.any_ipv4(),
                    ec2.Port.tcp(entry.port),
                    f"{entry.protocol} from the internet",
                )
            ack.public_security_group(
                self.security_group,
                http_only_redirects=_http_only_redirects(spec),
            )

        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=internet_facing,
            vpc_subnets=public_subnets if internet_facing else private_subnets,
            security_group=self.security_group,
            drop_invalid_header_fields=True,
            idle_timeout=cdk.Duration.seconds(spec.idle_timeout),
            deletion_protection=False,
        )
        cfn_lb = self.load_balancer.node.default_child
        assert isinstance(cfn_lb, cdk.CfnResource)
        cfn_lb.add_metadata(policy.METADATA_KEY, {"load_balancer": name, "scheme": spec.scheme})
        if access_logs is not None and spec.access_logs.enabled:
            self.load_balancer.log_access_logs(access_logs, prefix=name)
        self.waf = (
            WebAcl(self, "Waf", name=name, waf=spec.waf, load_balancer=self.load_balancer)
            if spec.waf is not None
            else None
        )

        self.certificate: ListenerCertificate | None = None
        if spec.certificate is not None:
            self.certificate = ListenerCertificate(
                self,
                "Certificate",
                certificate=spec.certificate,
                parameter_name=f"{pascal(name)}HostedZoneId",
            )

        self.listeners: dict[int, elbv2.ApplicationListener] = {}
        self.rules: dict[tuple[int, int], elbv2.ApplicationListenerRule] = {}
        for listener_spec in spec.listeners:
            port = listener_spec.port
            https = listener_spec.protocol == "HTTPS"
            listener = self.load_balancer.add_listener(
                f"Listener{port}",
                port=port,
                protocol=elbv2.ApplicationProtocol.HTTPS
                if https
                else elbv2.ApplicationProtocol.HTTP,
                certificates=[
                    elbv2.ListenerCertificate.from_certificate_manager(self.certificate.certificate)
                ]
                if https and self.certificate is not None
                else None,
                default_action=listener_action(listener_spec.default_action, target_groups),
                open=False,  # ingress is this construct's (and security.py's) decision
            )
            cfn_listener = listener.node.default_child
            assert isinstance(cfn_listener, elbv2.CfnListener)
            if https:
                # The spec names the policy (validated TLS 1.2+); SslPolicy is a closed enum.
                cfn_listener.ssl_policy = listener_spec.ssl_policy
            elif not internet_facing:
                ack.internal_http_listener(listener)
            cfn_listener.add_metadata(policy.METADATA_KEY, {"load_balancer": name, "port": port})
            self.listeners[port] = listener
            for rule in listener_spec.rules_by_priority():
                self.rules[(port, rule.priority)] = elbv2.ApplicationListenerRule(
                    self,
                    f"Listener{port}Rule{rule.priority}",
                    listener=listener,
                    priority=rule.priority,
                    conditions=listener_conditions(rule.conditions),
                    action=listener_action(rule.action, target_groups),
                )

        self.record: route53.ARecord | None = None
        certificate = spec.certificate
        if self.certificate is not None and self.certificate.hosted_zone is not None:
            assert certificate is not None
            self.record = route53.ARecord(
                self,
                "AliasRecord",
                zone=self.certificate.hosted_zone,
                record_name=certificate.domain,
                target=route53.RecordTarget.from_alias(
                    route53_targets.LoadBalancerTarget(self.load_balancer)
                ),
            )

    @property
    def url(self) -> str:
        """Where clients reach the first listener: the domain if there is one, else the DNS name."""
        listener = next(
            (lst for lst in self.spec.listeners if lst.protocol == "HTTPS"), self.spec.listeners[0]
        )
        scheme = listener.protocol.lower()
        host = (
            self.spec.certificate.domain
            if self.spec.certificate is not None and self.record is not None
            else self.load_balancer.load_balancer_dns_name
        )
        default_port = {"http": 80, "https": 443}[scheme]
        port = "" if listener.port == default_port else f":{listener.port}"
        return f"{scheme}://{host}{port}"


def _http_only_redirects(spec: LoadBalancerSpec) -> bool:
    """Whether the plain-HTTP listeners exist and all of them only redirect to HTTPS."""
    plain = [listener for listener in spec.listeners if listener.protocol == "HTTP"]
    return bool(plain) and all(
        not listener.rules
        and listener.default_action.redirect is not None
        and listener.default_action.redirect.protocol == "HTTPS"
        for listener in plain
    )
