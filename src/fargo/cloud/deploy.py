"""``fargo deploy [--dry-run]`` and ``fargo destroy``.

A dry run synthesizes, runs every check and prints what would be created. A real deploy
checks its prerequisites first and stops before doing anything if one is missing; then:

1. synthesize with each image tagged by a digest of its build inputs
   (`fargo.cloud.images`), and run every check;
2. ``cdk bootstrap`` unless the account and region are bootstrapped; ECS's (and
   scaling's) service-linked roles unless they exist (`fargo.cloud.account`); deploy
   the network and registry stacks;
3. build each image whose tag is not in its ECR repository yet
   (``docker build -f <context>/<dockerfile> <context>``) and push it: an image whose
   inputs did not change is neither rebuilt nor redeployed;
4. deploy the application stack, wait until the ECS services are stable, print the URLs.

Every command runs from an argv list, never through a shell.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fargo.cloud import account as account_module
from fargo.cloud.images import ImageContextError, context_tags, image_platforms
from fargo.cloud.names import repository_name
from fargo.cloud.prerequisites import cdk_cli, check_prerequisites, emulation_problems
from fargo.spec.model import Spec

DEFAULT_OUTDIR = Path("cdk.out")
OUTPUTS_FILE = "outputs.json"
DRY_RUN_TAG = "dry-run"
DEMO_CALLS = 20  # calls per balancing check when a deploy checks the points


@dataclass(frozen=True)
class Images:
    """What a deploy builds: each image's Docker platform and tag."""

    platforms: dict[str, str]
    tags: dict[str, str]


class DeployError(Exception):
    """A deploy step failed; the message says which and what it printed."""


def deploy(
    spec: Spec,
    *,
    dry_run: bool,
    demo: bool = True,
    root: Path | None = None,
    outdir: Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Deploy ``spec`` (image build contexts relative to ``root``, default: cwd), then check
    the demonstration points on it unless ``demo`` is false; the exit status."""
    out = out or sys.stdout
    root = root or Path.cwd()
    outdir = outdir or root / DEFAULT_OUTDIR
    command = "fargo deploy --dry-run" if dry_run else "fargo deploy"
    if not dry_run:
        missing = check_prerequisites()
        if missing:
            print("fargo deploy: cannot start; nothing was changed.", file=out)
            for item in missing:
                print(item.render(), file=out)
            return 2
    try:
        images = Images(platforms=image_platforms(spec), tags=context_tags(spec, root))
        if dry_run:
            return _dry_run(spec, images, root=root, outdir=outdir, out=out)
        for problem in emulation_problems(set(images.platforms.values())):
            print(f"warning: {problem.what}; the image builds may fail.\n  {problem.how}", file=out)
        return _deploy(spec, images, root=root, outdir=outdir, out=out, demo=demo)
    except (DeployError, ImageContextError, account_module.AccessDeniedError) as err:
        print(f"{command}: {err}", file=out)
        return 1


def destroy(spec: Spec, *, outdir: Path | None = None, out: TextIO | None = None) -> int:
    """Delete the stacks of ``spec`` (images first, so the repositories can go)."""
    out = out or sys.stdout
    outdir = outdir or Path.cwd() / DEFAULT_OUTDIR
    missing = check_prerequisites(docker=False)
    if missing:
        print("fargo destroy: cannot start; nothing was changed.", file=out)
        for item in missing:
            print(item.render(), file=out)
        return 2
    try:
        from fargo.cloud.synth import synthesize

        result = synthesize(spec, outdir, image_tags=DRY_RUN_TAG)
        session = _session(spec)
        _empty_repositories(session, spec, out)
        cdk = _Cdk(outdir, out)
        cdk.run("destroy", "--force", *reversed(result.stack_names()))
    except DeployError as err:
        print(f"fargo destroy: {err}", file=out)
        return 1
    print(
        "destroyed. The access-log bucket is kept (audit records); delete it in the S3 "
        "console when no longer needed.",
        file=out,
    )
    return 0


# -- dry run ------------------------------------------------------------------------------


def _dry_run(spec: Spec, images: Images, *, root: Path, outdir: Path, out: TextIO) -> int:
    from fargo.cloud.checks import check_report
    from fargo.cloud.synth import synthesize

    tags = images.tags
    result = synthesize(spec, outdir, image_tags=tags)
    print(f"synthesized {len(result.templates)} stacks to {outdir}", file=out)
    for stack in result.stack_names():
        counts = resource_counts(result.template(stack))
        print(f"\n{stack}: {sum(counts.values())} resources", file=out)
        for kind, count in sorted(counts.items()):
            print(f"  {count:3d}  {kind}", file=out)
    print("\nimages to build and push:", file=out)
    for name, image in spec.images.items():
        context = root / image.context
        print(
            f"  {name}: docker build -f {context / image.dockerfile} {context} "
            f"→ {repository_name(spec.name, name)}:{tags[name]}",
            file=out,
        )
    _print_cost(spec, out)
    report = check_report(result)
    print(
        f"\nchecks: {', '.join(report.ran)}; {len(report.acknowledged)} acknowledged "
        "findings (reasons in docs/cloud.md)",
        file=out,
    )
    for finding in report.findings:
        print(f"  FINDING {finding.render()}", file=out)
    if report.findings:
        print(f"{len(report.findings)} findings: a deploy would stop here.", file=out)
        return 1
    print("no findings: `fargo deploy` would create the above.", file=out)
    return 0


def _print_cost(spec: Spec, out: TextIO) -> None:
    from fargo.cloud.cost import monthly_total
    from fargo.cloud.prices import UnknownRegionError

    try:
        total = monthly_total(spec)
    except UnknownRegionError as err:
        print(f"\nmonthly cost: not known ({err})", file=out)
        return
    print(
        f"\nmonthly cost: about {total:,.2f} USD at list prices (`fargo cost` for the lines)",
        file=out,
    )


def resource_counts(template: Mapping[str, Any]) -> Counter[str]:
    return Counter(str(r["Type"]) for r in template.get("Resources", {}).values())


# -- real deploy --------------------------------------------------------------------------


def _deploy(
    spec: Spec, images: Images, *, root: Path, outdir: Path, out: TextIO, demo: bool
) -> int:
    from fargo.cloud.checks import run_checks
    from fargo.cloud.demo import print_points
    from fargo.cloud.synth import synthesize

    tags, platforms = images.tags, images.platforms
    result = synthesize(spec, outdir, image_tags=tags)
    findings = run_checks(result)
    if findings:
        for finding in findings:
            print(f"  FINDING {finding.render()}", file=out)
        raise DeployError(f"{len(findings)} check findings; fix them before deploying")
    network, registry, app = result.stack_names()

    session = _session(spec)
    account = session.client("sts").get_caller_identity()["Account"]
    cdk = _Cdk(outdir, out)
    if account_module.needs_bootstrap(session.client("ssm")):
        cdk.run("bootstrap", f"aws://{account}/{spec.region}", app_arg=False)
    else:
        print(f"aws://{account}/{spec.region} is bootstrapped for the CDK", file=out)
    roles = account_module.service_linked_roles(spec)
    for created in account_module.ensure_service_linked_roles(session.client("iam"), roles):
        print(f"created the service-linked role {created}", file=out)
    cdk.run("deploy", "--exclusively", "--require-approval", "never", network, registry)

    ecr = session.client("ecr")
    registry_host = _docker_login(ecr, out)
    for name, image in spec.images.items():
        tag = tags[name]
        uri = f"{registry_host}/{repository_name(spec.name, name)}:{tag}"
        if _image_exists(ecr, repository_name(spec.name, name), tag):
            print(f"{uri} already pushed: its inputs did not change", file=out)
            continue
        context = root / image.context
        _run(
            [
                "docker",
                "build",
                "--platform",
                platforms[name],
                "-f",
                str(context / image.dockerfile),
                "-t",
                uri,
                str(context),
            ],
            out,
        )
        _run(["docker", "push", uri], out)

    parameters = [
        f"{app}:{parameter}={zone_id}"
        for parameter, zone_id in hosted_zone_parameters(session, spec).items()
    ]
    outputs_file = outdir / OUTPUTS_FILE
    first_deploy = not _stack_exists(session, app)
    cdk.run(
        "deploy",
        "--exclusively",
        "--require-approval",
        "never",
        "--outputs-file",
        str(outputs_file),
        *(arg for parameter in parameters for arg in ("--parameters", parameter)),
        app,
    )
    outputs: dict[str, str] = json.loads(outputs_file.read_text(encoding="utf-8")).get(app, {})
    if first_deploy:
        _start_autoscaled_services(session, spec, outputs, out)
    _wait_stable(session, outputs, out)
    for key, value in sorted(outputs.items()):
        if key.endswith("Url"):
            print(f"{key}: {value}", file=out)
    if not demo:
        return 0
    print("checking the demonstration points on the deployed system…", file=out, flush=True)
    status = print_points(spec, session, outputs, calls=DEMO_CALLS, out=out)
    if status != 0:
        print(
            "fargo deploy: the stacks are deployed, but a demonstration point failed (above); "
            "run `fargo demo --cloud` again once it is fixed",
            file=out,
        )
    return status


def hosted_zone_parameters(session: Any, spec: Spec) -> dict[str, str]:
    """Values for the ``<Lb>HostedZoneId`` parameters: public zones looked up by name."""
    from fargo.cloud.names import pascal

    route53 = session.client("route53")
    values: dict[str, str] = {}
    for name, lb in spec.load_balancers.items():
        cert = lb.certificate
        if cert is None or cert.hosted_zone is None or cert.hosted_zone_id is not None:
            continue
        zone_name = cert.hosted_zone.rstrip(".") + "."
        zones = route53.list_hosted_zones_by_name(DNSName=zone_name, MaxItems="10")["HostedZones"]
        public = [
            z
            for z in zones
            if z["Name"] == zone_name and not z.get("Config", {}).get("PrivateZone")
        ]
        if not public:
            raise DeployError(
                f"no public Route 53 hosted zone named {cert.hosted_zone} in this account "
                f"(load_balancers.{name}.certificate.hosted_zone); create it or set hosted_zone_id"
            )
        values[f"{pascal(name)}HostedZoneId"] = str(public[0]["Id"]).rsplit("/", 1)[-1]
    return values


class _Cdk:
    """The CDK CLI on a synthesized assembly."""

    def __init__(self, outdir: Path, out: TextIO) -> None:
        argv = cdk_cli(os.environ)
        if argv is None:
            raise DeployError("the AWS CDK CLI is missing")
        self.argv = argv
        self.outdir = outdir
        self.out = out

    def run(self, command: str, *args: str, app_arg: bool = True) -> None:
        app = ["--app", str(self.outdir)] if app_arg else []
        _run([*self.argv, command, *app, *args], self.out)


def _run(argv: Sequence[str], out: TextIO) -> None:
    print("$ " + " ".join(argv), file=out, flush=True)
    completed = subprocess.run(list(argv), check=False)
    if completed.returncode != 0:
        raise DeployError(
            f"{argv[0]} {argv[1] if len(argv) > 1 else ''} exited with {completed.returncode}"
        )


def _session(spec: Spec) -> Any:
    try:
        import boto3
    except ImportError as err:
        raise DeployError("boto3 is missing: pip install boto3") from err
    return boto3.Session(region_name=spec.region)


def _docker_login(ecr: Any, out: TextIO) -> str:
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = str(data["proxyEndpoint"]).removeprefix("https://")
    print(f"$ docker login --username {user} --password-stdin {registry}", file=out, flush=True)
    completed = subprocess.run(
        ["docker", "login", "--username", user, "--password-stdin", registry],
        input=password,
        text=True,
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0:
        raise DeployError(f"docker login to {registry} failed: {completed.stderr.strip()}")
    return registry


def _image_exists(ecr: Any, repository: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        return False
    return True


def _empty_repositories(session: Any, spec: Spec, out: TextIO) -> None:
    ecr = session.client("ecr")
    for name in spec.images:
        repository = repository_name(spec.name, name)
        try:
            pages = ecr.get_paginator("list_images").paginate(repositoryName=repository)
            ids = [image for page in pages for image in page["imageIds"]]
        except ecr.exceptions.RepositoryNotFoundException:
            continue
        for start in range(0, len(ids), 100):  # the API takes 100 at a time
            ecr.batch_delete_image(repositoryName=repository, imageIds=ids[start : start + 100])
        print(f"deleted {len(ids)} images from {repository}", file=out)


def _stack_exists(session: Any, name: str) -> bool:
    try:
        session.client("cloudformation").describe_stacks(StackName=name)
    except Exception as err:  # botocore's ClientError: "Stack with id … does not exist"
        if "does not exist" in str(err):
            return False
        raise
    return True


def _start_autoscaled_services(
    session: Any, spec: Spec, outputs: Mapping[str, str], out: TextIO
) -> None:
    """An autoscaled service has no DesiredCount in the template (a deploy would reset what
    the scaling did): ECS creates it with one task, raised to ``min_capacity``. Once, when
    the stack is created, it is set to the spec's ``desired_count``; scaling owns it after."""
    from fargo.cloud.names import pascal

    ecs = session.client("ecs")
    cluster = outputs.get("ClusterName")
    for name, service in spec.services.items():
        deployed = outputs.get(f"{pascal(name)}ServiceName")
        if service.autoscaling is None or cluster is None or deployed is None:
            continue
        if service.desired_count > service.autoscaling.min_capacity:
            ecs.update_service(
                cluster=cluster, service=deployed, desiredCount=service.desired_count
            )
            print(f"{name}: starting at {service.desired_count} tasks", file=out)


def _wait_stable(session: Any, outputs: Mapping[str, str], out: TextIO) -> None:
    cluster = outputs.get("ClusterName")
    services = [value for key, value in outputs.items() if key.endswith("ServiceName")]
    if cluster is None or not services:
        return
    print(f"waiting for {len(services)} services to become stable…", file=out, flush=True)
    waiter = session.client("ecs").get_waiter("services_stable")
    for start in range(0, len(services), 10):  # DescribeServices takes 10 at a time
        waiter.wait(cluster=cluster, services=services[start : start + 10])
    print("services stable", file=out)
