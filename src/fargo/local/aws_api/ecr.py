"""ECR on the twin's image registry: a repository per spec image, the images pushed to it
(digest, tag, push time), and an authorization token for the registry endpoint (which
takes any credentials)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fargo.local.aws_api import arns
from fargo.local.aws_api.ecs_shapes import image_digest
from fargo.local.aws_api.errors import AwsError
from fargo.local.aws_api.paging import page
from fargo.local.aws_api.server import Handler
from fargo.local.ecr.registry import RegistryError
from fargo.local.ecs.task import ACCOUNT

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

INVALID = "InvalidParameterException"
TOKEN_HOURS = 12


class EcrApi:
    service = "ecr"
    invalid_parameter = INVALID

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def operations(self) -> Mapping[str, Handler]:
        return {
            "DescribeRepositories": self.describe_repositories,
            "DescribeImages": self.describe_images,
            "GetAuthorizationToken": self.get_authorization_token,
        }

    def _host(self) -> str:
        return self.runtime.registry_endpoint.url.removeprefix("http://")

    def _check(self, name: str) -> None:
        if name not in self.runtime.spec.images:
            raise AwsError(
                "RepositoryNotFoundException",
                f"The repository with name '{name}' does not exist in the registry with id "
                f"'{ACCOUNT}'",
            )

    def describe_repositories(self, params: dict[str, Any]) -> dict[str, Any]:
        names = list(params.get("repositoryNames") or self.runtime.spec.images)
        for name in names:
            self._check(name)
        region = self.runtime.spec.region
        items, token = page(
            names, params.get("nextToken"), params.get("maxResults"), default=100, invalid=INVALID
        )
        return {
            "repositories": [
                {
                    "repositoryArn": arns.arn("ecr", region, f"repository/{n}"),
                    "registryId": ACCOUNT,
                    "repositoryName": n,
                    "repositoryUri": f"{self._host()}/{n}",
                    "createdAt": self.runtime.created_at,
                    "imageTagMutability": "MUTABLE",
                    "imageScanningConfiguration": {"scanOnPush": False},
                    "encryptionConfiguration": {"encryptionType": "AES256"},
                }
                for n in items
            ],
            "nextToken": token,
        }

    def describe_images(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["repositoryName"]
        self._check(name)
        try:
            image = self.runtime.registry.pull(name)
        except RegistryError:
            return {"imageDetails": []}
        digest = image_digest(image)
        for wanted in params.get("imageIds") or []:
            if wanted.get("imageDigest") not in (None, digest) or wanted.get("imageTag") not in (
                None,
                image.tag,
            ):
                raise AwsError(
                    "ImageNotFoundException",
                    f"The image with imageId {wanted} does not exist within the repository "
                    f"with name '{name}'",
                )
        try:
            pushed = datetime.fromtimestamp(image.root.stat().st_mtime, UTC)
        except OSError:
            pushed = self.runtime.created_at
        return {
            "imageDetails": [
                {
                    "registryId": ACCOUNT,
                    "repositoryName": name,
                    "imageDigest": digest,
                    "imageTags": [image.tag],
                    "imagePushedAt": pushed,
                    "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
                    "artifactMediaType": "application/vnd.oci.image.config.v1+json",
                }
            ]
        }

    def get_authorization_token(self, params: dict[str, Any]) -> dict[str, Any]:
        token = base64.b64encode(f"AWS:{secrets.token_hex(16)}".encode()).decode()
        return {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": datetime.now(UTC) + timedelta(hours=TOKEN_HOURS),
                    "proxyEndpoint": self.runtime.registry_endpoint.url,
                }
            ]
        }
