"""``fargo synth``: the spec to a CloudFormation cloud assembly, offline.

from fargo.cloud.synth import synthesize
result = synthesize(spec, Path("cdk.out"), image_tags=context_tags(spec, Path(".")))
result.templates["fargo-demo-app"]  # Path of the stack's template
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fargo.cloud import policy
from fargo.cloud.findings import Acknowledged, Finding
from fargo.cloud.images import uniform_tags
from fargo.spec.deployable import ensure_deployable
from fargo.spec.model import Spec

VALIDATION_REPORT = "validation-report.json"


@dataclass(frozen=True)
class SynthResult:
    """A synthesized cloud assembly.

    ``templates`` maps stack names to template files, in deploy order.
    ``nag_findings`` are cdk-nag violations nobody acknowledged (none, for a good spec);
    ``nag_acknowledged`` the ones acknowledged in `fargo.cloud.acknowledgements`.
    """

    spec: Spec
    outdir: Path
    image_tags: dict[str, str]
    templates: dict[str, Path]
    nag_findings: list[Finding] = field(default_factory=list)
    nag_acknowledged: list[Acknowledged] = field(default_factory=list)

    def template(self, stack: str) -> dict[str, Any]:
        """The parsed template of ``stack`` (a stack name, or its part: ``app``)."""
        path = self.templates.get(stack) or self.templates[f"{self.spec.name}-{stack}"]
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded

    def stack_names(self) -> list[str]:
        return list(self.templates)


def synthesize(spec: Spec, outdir: Path, *, image_tags: Mapping[str, str] | str) -> SynthResult:
    """Synthesize ``spec`` into ``outdir`` (a CDK cloud assembly); no AWS account, no Docker.

    ``image_tags``: image name → the tag its services deploy (`fargo.cloud.images`), or
    one tag for every image.

    cdk-nag runs during synthesis; its violations do not stop synthesis here but are
    returned in ``nag_findings`` (`fargo.cloud.checks.run_checks` reports them).
    Raises `fargo.spec.deployable.CloudSpecError` when the spec asks what the cloud cannot
    do (`fargo synth` has reported it, located in the file, before: `fargo.spec.check_spec`).
    """
    ensure_deployable(spec)
    from fargo.cloud.app import build_app, stack_name

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / VALIDATION_REPORT).unlink(missing_ok=True)
    tags = uniform_tags(spec, image_tags) if isinstance(image_tags, str) else dict(image_tags)
    app, _ = build_app(spec, outdir=outdir, image_tags=tags)
    try:
        app.synth()
    except RuntimeError as err:
        # CDK fails synthesis when a validation plugin (cdk-nag) reports a violation,
        # after writing the templates and the report; anything else is a real error.
        if "ValidationFailed" not in str(err) or not (outdir / VALIDATION_REPORT).exists():
            raise
    names = [stack_name(spec, part) for part in policy.STACK_ORDER]
    templates = {name: outdir / f"{name}.template.json" for name in names}
    findings, acknowledged = _read_validation_report(outdir / VALIDATION_REPORT, names)
    return SynthResult(
        spec=spec,
        outdir=outdir,
        image_tags=tags,
        templates=templates,
        nag_findings=findings,
        nag_acknowledged=acknowledged,
    )


def _read_validation_report(
    path: Path, stacks: list[str]
) -> tuple[list[Finding], list[Acknowledged]]:
    if not path.exists():
        return [], []
    report = json.loads(path.read_text(encoding="utf-8"))
    findings: list[Finding] = []
    acknowledged: list[Acknowledged] = []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                construct_path = construct.get("constructPath", "")
                stack, _, resource = construct_path.partition("/")
                findings.append(
                    Finding(
                        tool="cdk-nag",
                        rule=violation.get("ruleName", "?"),
                        stack=stack if stack in stacks else "",
                        resource=resource or construct_path,
                        message=violation.get("description", ""),
                    )
                )
        for violation in plugin.get("suppressedViolations", []):
            for construct in violation.get("violatingConstructs", []):
                acknowledged.append(
                    Acknowledged(
                        tool="cdk-nag",
                        rule=violation.get("ruleName", "?"),
                        resource=construct.get("constructPath", ""),
                        reason=violation.get("reason", ""),
                    )
                )
    return findings, acknowledged
