"""fargo: microservices on AWS Fargate from one spec.

AWS CDK renders the spec for the cloud; the local twin runs it on one machine.
"""

__version__ = "0.1.0"
