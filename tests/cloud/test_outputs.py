"""Stack outputs: the public URL, the internal load balancer's DNS name, the namespace."""

from __future__ import annotations

from aws_cdk import assertions

from fargo.cloud.synth import SynthResult


def test_public_url_is_the_https_domain(app_template: assertions.Template) -> None:
    app_template.has_output("PublicUrl", {"Value": "https://fargo.example.com"})


def test_internal_load_balancer_dns_name(app_template: assertions.Template) -> None:
    app_template.has_output(
        "InternalDnsName",
        {
            "Value": {
                "Fn::GetAtt": [
                    assertions.Match.string_like_regexp("^InternalLoadBalancer"),
                    "DNSName",
                ]
            }
        },
    )


def test_namespace(app_template: assertions.Template) -> None:
    app_template.has_output("Namespace", {"Value": "microservice.local"})


def test_cluster_and_service_names_for_waiting_on_a_deploy(reference: SynthResult) -> None:
    outputs = reference.template("app")["Outputs"]
    assert "ClusterName" in outputs
    assert {key for key in outputs if key.endswith("ServiceName")} == {
        "FrontendServiceName",
        "BackendPublicServiceName",
        "BackendPrivateServiceName",
        "BackendPrivateWithAlbServiceName",
    }


def test_ecr_repository_uris(reference: SynthResult) -> None:
    outputs = reference.template("registry")["Outputs"]
    assert {key for key in outputs if key.endswith("RepositoryUri")} == {
        "FrontendRepositoryUri",
        "BackendPublicRepositoryUri",
        "BackendPrivateRepositoryUri",
    }


def test_each_services_log_group_for_the_demo_to_search(reference: SynthResult) -> None:
    template = reference.template("app")
    outputs = template["Outputs"]
    groups = {key: value["Value"] for key, value in outputs.items() if key.endswith("LogGroupName")}
    assert set(groups) == {
        "FrontendLogGroupName",
        "BackendPublicLogGroupName",
        "BackendPrivateLogGroupName",
        "BackendPrivateWithAlbLogGroupName",
    }
    for value in groups.values():
        (logical_id,) = value.values()  # {"Ref": <the service's log group>}
        assert template["Resources"][logical_id]["Type"] == "AWS::Logs::LogGroup"
