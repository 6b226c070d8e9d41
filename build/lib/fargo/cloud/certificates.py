"""A load balancer's certificate: issued by ACM and DNS-validated in Route 53, or imported."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_route53 as route53
from constructs import Construct

from fargo.spec.elb import Certificate


class ListenerCertificate(Construct):
    """The certificate for ``certificate.domain`` and the hosted zone it lives in.

    The zone's id comes from ``hosted_zone_id`` in the spec or, so that synth needs no AWS
    account, from the stack parameter ``zone_id_parameter`` (`fargo deploy` fills it in by
    looking the zone up by name).

    Children: ``certificate``, ``hosted_zone`` (None without ``hosted_zone``),
    ``zone_id_parameter`` (None when the spec pins the id).
    """

    def __init__(
        self, scope: Construct, id: str, *, certificate: Certificate, parameter_name: str
    ) -> None:
        super().__init__(scope, id)
        self.zone_id_parameter: cdk.CfnParameter | None = None
        self.hosted_zone: route53.IHostedZone | None = None
        if certificate.hosted_zone is not None:
            zone_id = certificate.hosted_zone_id
            if zone_id is None:
                self.zone_id_parameter = cdk.CfnParameter(
                    cdk.Stack.of(self),
                    parameter_name,
                    type="AWS::Route53::HostedZone::Id",
                    description=f"Id of the Route 53 hosted zone {certificate.hosted_zone}",
                )
                zone_id = self.zone_id_parameter.value_as_string
            self.hosted_zone = route53.HostedZone.from_hosted_zone_attributes(
                self, "Zone", hosted_zone_id=zone_id, zone_name=certificate.hosted_zone
            )

        self.certificate: acm.ICertificate
        if certificate.arn is not None:
            self.certificate = acm.Certificate.from_certificate_arn(
                self, "Certificate", certificate.arn
            )
        else:
            # `fargo.spec.deployable` guarantees a zone when there is no ARN.
            assert self.hosted_zone is not None
            self.certificate = acm.Certificate(
                self,
                "Certificate",
                domain_name=certificate.domain,
                subject_alternative_names=certificate.subject_alternative_names or None,
                validation=acm.CertificateValidation.from_dns(self.hosted_zone),
            )
