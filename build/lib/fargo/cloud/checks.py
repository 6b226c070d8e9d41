"""The checks a synthesized assembly must pass: cdk-nag, cfn-lint, checkov.

    from fargo.cloud.checks import run_checks
    findings = run_checks(result)   # [] when every check passes

cdk-nag (AwsSolutions) ran during synthesis; cfn-lint runs in-process on each template;
checkov runs as a subprocess (it is a large program with its own logging). Acknowledged
findings — each with its reason in `fargo.cloud.acknowledgements` — are not findings;
`check_report` returns them too, for ``fargo deploy --dry-run`` and the docs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fargo.cloud.findings import Acknowledged, Finding
from fargo.cloud.synth import SynthResult

CHECKOV_TIMEOUT_SECONDS = 600
# cfn-lint levels that count: errors and warnings (informational notes do not).
CFN_LINT_LEVELS = ("E", "W")


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    acknowledged: list[Acknowledged] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)  # tools that ran


def run_checks(result: SynthResult) -> list[Finding]:
    """Every unacknowledged finding of cdk-nag, cfn-lint and checkov."""
    return check_report(result).findings


def check_report(result: SynthResult) -> CheckReport:
    report = CheckReport(
        findings=list(result.nag_findings),
        acknowledged=list(result.nag_acknowledged),
        ran=["cdk-nag"],
    )
    report.findings += cfn_lint(result)
    report.ran.append("cfn-lint")
    failed, skipped = checkov(result)
    report.findings += failed
    report.acknowledged += skipped
    report.ran.append("checkov")
    return report


def cfn_lint(result: SynthResult) -> list[Finding]:
    """cfn-lint's errors and warnings for every template, linted for the spec's region."""
    try:
        from cfnlint.api import lint
        from cfnlint.config import ManualArgs
    except ImportError:
        return [_missing("cfn-lint")]
    findings: list[Finding] = []
    for stack, path in result.templates.items():
        matches = lint(
            path.read_text(encoding="utf-8"),
            config=ManualArgs(regions=[result.spec.region]),
        )
        for match in matches:
            rule_id = str(match.rule.id)
            if rule_id[:1] not in CFN_LINT_LEVELS:
                continue
            findings.append(
                Finding(
                    tool="cfn-lint",
                    rule=rule_id,
                    stack=stack,
                    resource=f"line {match.linenumber}",
                    message=str(match.message),
                )
            )
    return findings


def checkov(result: SynthResult) -> tuple[list[Finding], list[Acknowledged]]:
    """checkov's failed checks, and the checks skipped by template metadata, with reasons."""
    argv = [sys.executable, "-m", "checkov.main", "--framework", "cloudformation"]
    for path in result.templates.values():
        argv += ["-f", str(path)]
    # --skip-download: no network (checkov otherwise fetches guidelines from Prisma Cloud).
    argv += ["-o", "json", "--skip-download", "--compact"]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
    try:
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=env,
            timeout=CHECKOV_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [_problem("checkov", f"did not finish in {CHECKOV_TIMEOUT_SECONDS} s")], []
    if completed.returncode not in (0, 1):  # 1: some check failed
        if "No module named checkov" in completed.stderr:
            return [_missing("checkov")], []
        return [_problem("checkov", f"exit {completed.returncode}: {completed.stderr[-500:]}")], []
    try:
        output: Any = json.loads(completed.stdout)
    except json.JSONDecodeError:
        return [_problem("checkov", f"unreadable output: {completed.stdout[:200]!r}")], []
    reports = output if isinstance(output, list) else [output]
    by_file = {path.name: stack for stack, path in result.templates.items()}
    failed: list[Finding] = []
    skipped: list[Acknowledged] = []
    for report in reports:
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            failed.append(
                Finding(
                    tool="checkov",
                    rule=check["check_id"],
                    stack=by_file.get(Path(check.get("file_path", "")).name, ""),
                    resource=check.get("resource", ""),
                    message=check.get("check_name", ""),
                )
            )
        for check in results.get("skipped_checks", []):
            skipped.append(
                Acknowledged(
                    tool="checkov",
                    rule=check["check_id"],
                    resource=check.get("resource", ""),
                    reason=check.get("check_result", {}).get("suppress_comment", ""),
                )
            )
    return failed, skipped


def _missing(tool: str) -> Finding:
    return _problem(
        tool, f"{tool} is not installed: pip install -e '.[dev]' (or pip install {tool})"
    )


def _problem(tool: str, message: str) -> Finding:
    return Finding(tool=tool, rule="not-run", stack="", resource="", message=message)
