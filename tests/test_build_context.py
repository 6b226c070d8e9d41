"""Image tags from build contexts: a change reaches exactly the images that copy it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.build_context import context_files, copied_sources, image_tag, instructions

ROOT = Path(__file__).resolve().parents[1]


def shared_context(tmp_path: Path) -> Path:
    """Two services and their shared kit in one context, as the demo's ``services/``."""
    files = {
        "kit/__init__.py": "",
        "kit/http.py": "KIT = 1\n",
        "alpha/app.py": "ALPHA = 1\n",
        "alpha/requirements.txt": "uvicorn\n",
        "beta/app.py": "BETA = 1\n",
        "README.md": "docs\n",
        "alpha/tests/test_app.py": "def test(): pass\n",
        ".dockerignore": "**/tests\nREADME.md\n",
        "alpha/Dockerfile": (
            "FROM python:3.12-slim AS builder\n"
            "COPY alpha/requirements.txt /tmp/requirements.txt\n"
            "COPY --chown=10001 kit /app/kit\n"
            'COPY ["alpha", "/app/alpha"]\n'
            "FROM python:3.12-slim\n"
            "COPY --from=builder /app /app\n"
        ),
        "beta/Dockerfile": "FROM python:3.12-slim\nCOPY kit /app/kit\nCOPY beta/*.py /app/beta/\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def tags(context: Path) -> dict[str, str]:
    return {name: image_tag(context, context / name / "Dockerfile") for name in ("alpha", "beta")}


def test_a_change_retags_only_the_images_that_copy_it(tmp_path: Path) -> None:
    context = shared_context(tmp_path)
    before = tags(context)
    assert len(before["alpha"]) == 16 and before["alpha"] != before["beta"]
    assert tags(context) == before  # a digest of the inputs: the same inputs, the same tag

    (context / "alpha" / "app.py").write_text("ALPHA = 2\n")
    after_alpha = tags(context)
    assert after_alpha["alpha"] != before["alpha"] and after_alpha["beta"] == before["beta"]

    (context / "kit" / "http.py").write_text("KIT = 2\n")  # shared: both change
    after_kit = tags(context)
    assert all(after_kit[name] != after_alpha[name] for name in after_kit)


def test_ignored_files_and_the_other_dockerfile_change_no_tag(tmp_path: Path) -> None:
    context = shared_context(tmp_path)
    before = tags(context)
    (context / "README.md").write_text("more docs\n")
    (context / "alpha" / "tests" / "test_app.py").write_text("def test(): assert 1\n")
    (context / "beta" / "notes.txt").write_text("not copied: beta copies *.py\n")
    assert tags(context) == before
    (context / "beta" / "Dockerfile").write_text(
        (context / "beta" / "Dockerfile").read_text() + 'CMD ["python", "-m", "beta"]\n'
    )
    assert tags(context)["alpha"] == before["alpha"]
    assert tags(context)["beta"] != before["beta"]


def test_copy_of_the_whole_context_or_a_variable_counts_every_file(tmp_path: Path) -> None:
    context = shared_context(tmp_path)
    dockerfile = context / "gamma.Dockerfile"
    for text in ("FROM x\nCOPY . /app\n", "FROM x\nARG DIR=alpha\nCOPY $DIR /app\n"):
        dockerfile.write_text(text)
        before = image_tag(context, dockerfile)
        (context / "beta" / "app.py").write_text(f"BETA = {before}\n")
        assert image_tag(context, dockerfile) != before


def test_sources_exclude_other_stages_urls_and_flags() -> None:
    text = (
        "FROM a AS build\n"
        "COPY --chown=1:1 --chmod=644 src/ \\\n    lib /app/\n"
        "ADD https://example.com/x.tgz /x.tgz\n"
        "COPY --from=build /app /app\n"
    )
    assert copied_sources(text) == ["src/", "lib"]
    assert instructions(text)[1] == "COPY --chown=1:1 --chmod=644 src/ lib /app/"


@pytest.mark.parametrize("service", ["frontend", "backend_public", "backend_private"])
def test_the_demo_services_copy_their_own_package_and_the_kit(service: str) -> None:
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    sources = copied_sources(text)
    assert sources is not None
    assert {s.rstrip("/").split("/")[0] for s in sources} <= {service, "service_kit"}
    sent = context_files(ROOT / "services")  # .dockerignore keeps the tests out
    assert not any("tests" in path.parts for path in sent)
    assert any(path.parts[:2] == ("service_kit", "downstream.py") for path in sent)
