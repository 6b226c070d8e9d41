"""ECR: one repository per spec image, scanned on push, tags immutable, old images expired."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from fargo.cloud import acknowledgements as ack
from fargo.cloud.names import pascal, repository_name
from fargo.spec.model import Image


class Registry(Construct):
    """The image repositories, named ``<system>/<image>``.

    Repositories go away with the stack; `fargo destroy` deletes their images first
    (CloudFormation cannot delete a repository that still holds images).

    Children: ``repositories`` (image name → repository).
    """

    def __init__(self, scope: Construct, id: str, *, system: str, images: dict[str, Image]) -> None:
        super().__init__(scope, id)
        self.repositories: dict[str, ecr.Repository] = {}
        for name, image in images.items():
            repository = ecr.Repository(
                self,
                pascal(name),
                repository_name=repository_name(system, name),
                image_scan_on_push=image.scan_on_push,
                image_tag_mutability=ecr.TagMutability[image.tag_mutability],
                encryption=ecr.RepositoryEncryption.AES_256,
                lifecycle_rules=[
                    ecr.LifecycleRule(
                        description=f"keep the newest {image.max_images} images",
                        max_image_count=image.max_images,
                    )
                ],
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            # CDK leaves the default (AES-256) implicit; say it in the template.
            cfn = repository.node.default_child
            assert isinstance(cfn, ecr.CfnRepository)
            cfn.encryption_configuration = ecr.CfnRepository.EncryptionConfigurationProperty(
                encryption_type="AES256"
            )
            ack.ecr_repository(repository)
            self.repositories[name] = repository
