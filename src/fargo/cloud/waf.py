"""AWS WAF on a load balancer: a regional web ACL of AWS managed rule groups, and its log.

    WebAcl(stack, "PublicWaf", name="public", waf=spec_waf, load_balancer=alb)

Requests pass unless a rule group blocks them (a 403 from the load balancer). Each
group's matches are counted in CloudWatch metrics, and every request the ACL sees is
logged to a log group named ``aws-waf-logs-<stack>-<name>`` (WAF accepts only that
prefix) kept ``log_retention_days``.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from fargo.cloud import acknowledgements as ack
from fargo.cloud.names import pascal
from fargo.spec.elb import Waf

LOG_GROUP_PREFIX = "aws-waf-logs-"


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


class WebAcl(Construct):
    """Children: ``web_acl``, ``association``, ``log_group``, ``logging``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        waf: Waf,
        load_balancer: elbv2.IApplicationLoadBalancer,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group
                    )
                ),
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                visibility_config=_visibility(f"{pascal(name)}{group}"),
            )
            for priority, group in enumerate(waf.managed_rule_groups)
        ]
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{pascal(name)}WebAcl"),
            rules=rules,
            description=f"managed rule groups in front of load balancer {name}",
        )
        self.association = wafv2.CfnWebACLAssociation(
            self,
            "Association",
            resource_arn=load_balancer.load_balancer_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        group_name = f"{LOG_GROUP_PREFIX}{stack.stack_name}-{name}"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=group_name,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        cfn_group = self.log_group.node.default_child
        assert isinstance(cfn_group, logs.CfnLogGroup)
        cfn_group.retention_in_days = waf.log_retention_days
        ack.log_group(self.log_group)
        # WAF takes the log group's ARN without the ":*" that CloudFormation's Arn has.
        self.logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=group_name,
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
        self.logging.add_dependency(cfn_group)
