"""The stacks: each only wires constructs. Network, then registry, then the application."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from fargo.cloud import service_connect
from fargo.cloud.access_logs import AccessLogBucket
from fargo.cloud.cluster import Cluster
from fargo.cloud.discovery import ServiceDiscovery
from fargo.cloud.environment import resolve_environment
from fargo.cloud.images import tag_of
from fargo.cloud.load_balancers import LoadBalancer
from fargo.cloud.names import pascal, repository_name
from fargo.cloud.network import Network
from fargo.cloud.network_parameters import NetworkParameters, imported_vpc
from fargo.cloud.network_parameters import private_subnets as network_private_subnets
from fargo.cloud.registry import Registry
from fargo.cloud.security import connect_calls, connect_endpoints, seal_egress
from fargo.cloud.services import FargateService
from fargo.cloud.target_groups import TargetGroups
from fargo.spec import advice, egress
from fargo.spec import service_connect as sc
from fargo.spec.environment import task_environment
from fargo.spec.model import Spec


class NetworkStack(cdk.Stack):
    """The VPC. Children: ``network``."""

    def __init__(self, scope: Construct, id: str, *, spec: Spec, env: cdk.Environment) -> None:
        super().__init__(
            scope, id, env=env, description=f"{spec.name}: VPC, subnets, NAT, endpoints"
        )
        self.network = Network(
            self,
            "Network",
            network=spec.network,
            log_retention_days=spec.logging.retention_days,
            system=spec.name,
        )
        NetworkParameters(self, "Parameters", system=spec.name, network=self.network)


class RegistryStack(cdk.Stack):
    """The ECR repositories, deployed before the images are pushed. Children: ``registry``."""

    def __init__(self, scope: Construct, id: str, *, spec: Spec, env: cdk.Environment) -> None:
        super().__init__(scope, id, env=env, description=f"{spec.name}: ECR repositories")
        self.registry = Registry(self, "Registry", system=spec.name, images=spec.images)
        for name, repository in self.registry.repositories.items():
            cdk.CfnOutput(
                self,
                f"{pascal(name)}RepositoryUri",
                value=repository.repository_uri,
                description=f"ECR repository of image {name}",
            )


class AppStack(cdk.Stack):
    """Cluster, discovery, load balancers, target groups and services.

    Children: ``cluster``, ``discovery`` (or None), ``service_connect_namespace`` (or
    None), ``access_logs`` (or None),
    ``target_groups``, ``load_balancers``, ``services`` (spec name → construct).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: Spec,
        env: cdk.Environment,
        image_tags: Mapping[str, str],
    ) -> None:
        super().__init__(
            scope, id, env=env, description=f"{spec.name}: ECS services and load balancers"
        )
        # Nothing is imported from the other stacks (an export would lock them): the VPC
        # comes through SSM parameters, the repositories by their names.
        vpc = imported_vpc(self, "Vpc", system=spec.name, network=spec.network)
        repositories = {
            name: ecr.Repository.from_repository_name(
                self, f"{pascal(name)}Repository", repository_name(spec.name, name)
            )
            for name in spec.images
        }
        public_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        private_subnets = network_private_subnets(spec.network)
        retention = spec.logging.retention_days

        self.discovery = (
            ServiceDiscovery(self, "Discovery", discovery=spec.discovery, vpc=vpc)
            if spec.discovery is not None
            else None
        )
        self.service_connect_namespace = service_connect.namespace(
            self, spec, discovery=self.discovery
        )
        self.cluster = Cluster(
            self,
            "Cluster",
            cluster=spec.cluster,
            vpc=vpc,
            fargate_spot=any(s.capacity.spot > 0 for s in spec.services.values()),
        )
        if self.service_connect_namespace is not None:
            service_connect.set_cluster_default(
                self.cluster.cluster, self.service_connect_namespace
            )
        logged = {
            name: lb.access_logs.retention_days
            for name, lb in spec.load_balancers.items()
            if lb.access_logs.enabled
        }
        self.access_logs = (
            AccessLogBucket(self, "AccessLogs", retention_days=logged) if logged else None
        )
        self.target_groups = TargetGroups(self, "TargetGroups", spec=spec, vpc=vpc)
        self.load_balancers = {
            name: LoadBalancer(
                self,
                f"{pascal(name)}LoadBalancer",
                name=name,
                load_balancer=lb,
                vpc=vpc,
                public_subnets=public_subnets,
                private_subnets=private_subnets,
                target_groups=self.target_groups.target_groups,
                access_logs=self.access_logs.bucket if self.access_logs else None,
            )
            for name, lb in spec.load_balancers.items()
        }
        albs = {name: lb.load_balancer for name, lb in self.load_balancers.items()}
        self.services = {
            name: FargateService(
                self,
                f"{pascal(name)}Service",
                name=name,
                service=service,
                cluster=self.cluster.cluster,
                subnets=private_subnets,
                repository=repositories[service.image],
                image_tag=tag_of(image_tags, service.image),
                environment=resolve_environment(
                    spec, task_environment(service), load_balancers=albs
                ),
                log_retention_days=retention,
                # cdk-nag's "no secrets in the environment" is acknowledged only when true
                plain_secrets=bool(advice.plain_secrets(spec, name)),
                target_groups=[
                    self.target_groups.target_groups[tg] for tg in service.target_groups
                ],
                discovery_service=self.discovery.services[service.discovery]
                if self.discovery is not None and service.discovery is not None
                else None,
                https_anywhere=egress.reaches_internet(spec.network),
                service_connect_server=sc.endpoint_of(spec, name) is not None,
                tracing=spec.tracing == "xray",
            )
            for name, service in spec.services.items()
        }
        for name, service in self.services.items():
            service_connect.enable(
                spec,
                name,
                service.service,
                namespace=self.service_connect_namespace,
                log_group=service.log_group,
            )
        service_connect.order_deployments(
            spec, {name: service.service for name, service in self.services.items()}
        )
        providers = self.cluster.capacity_providers
        for name, service in self.services.items():
            cfn_service = service.service.node.default_child
            if spec.services[name].capacity.spot and providers is not None:
                # A capacity provider strategy needs the providers on the cluster first.
                assert isinstance(cfn_service, cdk.CfnResource)
                cfn_service.add_dependency(providers)
        connect_calls(spec, services=self.services, load_balancers=self.load_balancers)
        connect_endpoints(self, spec, services=self.services)
        seal_egress(
            [lb.security_group for lb in self.load_balancers.values()]
            + [service.security_group for service in self.services.values()]
        )
        self._outputs(spec)

    def _outputs(self, spec: Spec) -> None:
        for name, lb in self.load_balancers.items():
            cdk.CfnOutput(
                self,
                f"{pascal(name)}Url",
                value=lb.url,
                description=f"URL of load balancer {name} ({lb.spec.scheme})",
            )
            cdk.CfnOutput(
                self,
                f"{pascal(name)}DnsName",
                value=lb.load_balancer.load_balancer_dns_name,
                description=f"DNS name of load balancer {name}",
            )
        if self.discovery is not None:
            cdk.CfnOutput(
                self,
                "Namespace",
                value=self.discovery.namespace.namespace_name,
                description="Cloud Map private DNS namespace",
            )
        if self.service_connect_namespace is not None:
            cdk.CfnOutput(
                self,
                "ServiceConnectNamespaceName",
                value=self.service_connect_namespace.namespace_name,
                description="Cloud Map namespace of the Service Connect endpoints",
            )
        cdk.CfnOutput(
            self,
            "ClusterName",
            value=self.cluster.cluster.cluster_name,
            description="ECS cluster",
        )
        for name, service in self.services.items():
            cdk.CfnOutput(
                self,
                f"{pascal(name)}ServiceName",
                value=service.service.service_name,
                description=f"ECS service {name}",
            )
            cdk.CfnOutput(
                self,
                f"{pascal(name)}LogGroupName",
                value=service.log_group.log_group_name,
                description=f"CloudWatch log group of service {name} (fargo demo --cloud)",
            )
