"""The tag each image of a spec is deployed with: a digest of its build inputs.

    tags = context_tags(spec, root)   # {"frontend": "3f9a…", …}; root: the spec's folder

An image is rebuilt and pushed only when its tag is new (`fargo.build_context.image_tag`),
and the task definitions of the services using it change only then.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fargo.build_context import image_tag
from fargo.dockerfile import DockerfileError
from fargo.dockerignore import PatternError
from fargo.spec.model import Spec


class ImageContextError(ValueError):
    """An image's build context or Dockerfile is missing; the message names the field."""


ARCHITECTURE_PLATFORM = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}


def image_platforms(spec: Spec) -> dict[str, str]:
    """The Docker platform of each image, from the architecture of the services using it."""
    platforms: dict[str, str] = {}
    for image in spec.images:
        architectures = {s.architecture for s in spec.services.values() if s.image == image}
        if len(architectures) > 1:
            raise ImageContextError(
                f"image {image} is used by X86_64 and ARM64 services; give each its own image"
            )
        platforms[image] = ARCHITECTURE_PLATFORM[architectures.pop() if architectures else "X86_64"]
    return platforms


def context_tags(spec: Spec, root: Path) -> dict[str, str]:
    """Image name → the tag of what its Dockerfile builds from its context under ``root``
    for its services' platform (another architecture is another image, another tag)."""
    platforms = image_platforms(spec)
    tags = {}
    for name, image in spec.images.items():
        context = root / image.context
        dockerfile = context / image.dockerfile
        if not dockerfile.is_file():
            raise ImageContextError(
                f"images.{name}: no Dockerfile at {dockerfile} (context {image.context!r}, "
                f"dockerfile {image.dockerfile!r}, relative to {root}); fix the paths, or "
                "give --image-tag to synthesize without the sources"
            )
        try:
            tags[name] = image_tag(context, dockerfile, platform=platforms[name])
        except (DockerfileError, PatternError) as err:
            raise ImageContextError(f"images.{name}: {err}") from None
    return tags


def uniform_tags(spec: Spec, tag: str) -> dict[str, str]:
    """One tag for every image (``--image-tag``)."""
    return dict.fromkeys(spec.images, tag)


def tag_of(tags: Mapping[str, str], image: str) -> str:
    try:
        return tags[image]
    except KeyError:
        raise ImageContextError(f"no image tag for image {image!r}") from None
