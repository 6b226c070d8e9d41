"""Image tags from build contexts: a change reaches exactly the images that copy it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.build_context import context_files, context_sources, image_tag
from fargo.dockerfile import DockerfileError, parse, parse_file
from fargo.dockerignore import PatternMatcher

ROOT = Path(__file__).resolve().parents[1]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def shared_context(tmp_path: Path) -> Path:
    """Two services and their shared kit in one context, as the demo's ``services/``."""
    return write(
        tmp_path,
        {
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
            "beta/Dockerfile": (
                "FROM python:3.12-slim\nCOPY kit /app/kit\nCOPY beta/*.py /app/beta/\n"
            ),
        },
    )


def tags(context: Path) -> dict[str, str]:
    return {name: image_tag(context, context / name / "Dockerfile") for name in ("alpha", "beta")}


def tag_of(context: Path, dockerfile: str) -> str:
    path = context / "probe.Dockerfile"
    path.write_text(dockerfile)
    return image_tag(context, path)


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

    (context / "kit" / "http.py").chmod(0o755)  # COPY keeps the mode: a new image
    assert all(tags(context)[name] != after_kit[name] for name in after_kit)


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


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        ("foo", "foo", True),
        ("foo", "a/foo", False),  # anchored at the context root
        ("**/foo", "a/b/foo", True),
        ("/foo/", "foo/bar.py", True),  # leading / and trailing / change nothing
        ("./foo", "foo", True),
        ("*/tmp", "a/tmp/x", True),  # a matched directory takes what is under it
        ("*/tmp", "a/b/tmp/x", False),  # * is one directory level
        ("*.md\n!README.md", "README.md", False),  # ! re-includes
        ("*.md\n!README.md\nREADME.md", "README.md", True),  # the last match wins
        ("# comment\n\n  docs  ", "docs/x", True),
        ("#docs", "#docs", False),
        ("docs/**\n!docs/keep/**", "docs/keep/a", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-b]x", "bx", True),
        ("**", "anything/at/all", True),
    ],
)
def test_dockerignore_follows_dockers_pattern_rules(
    patterns: str, path: str, ignored: bool
) -> None:
    matcher = PatternMatcher([line for line in patterns.splitlines() if not line.startswith("#")])
    assert matcher.matches(path) is ignored


def test_an_anchored_dockerignore_pattern_keeps_nested_namesakes(tmp_path: Path) -> None:
    context = write(tmp_path, {"build/x": "", "src/build/y": "", ".dockerignore": "build\n"})
    sent = {p.as_posix() for p in context_files(context)}
    assert "src/build/y" in sent and "build/x" not in sent


def test_a_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    context = shared_context(tmp_path)
    dockerfile = context / "beta" / "Dockerfile"
    (context / "beta" / "Dockerfile.dockerignore").write_text("beta/app.py\n")
    assert "beta/app.py" not in {p.as_posix() for p in context_files(context, dockerfile)}
    before = image_tag(context, dockerfile)
    (context / "beta" / "app.py").write_text("BETA = 2\n")  # not sent: not an input
    assert image_tag(context, dockerfile) == before


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM x\nCOPY . /app\n",
        "FROM x\nCOPY $DIR /app\n",  # the base image may set DIR: every file counts
        "FROM x\nRUN --mount=type=bind,target=/src make\n",  # the whole context, bound
    ],
)
def test_the_whole_context_or_an_unknown_variable_counts_every_file(
    tmp_path: Path, dockerfile: str
) -> None:
    context = shared_context(tmp_path)
    before = tag_of(context, dockerfile)
    (context / "beta" / "app.py").write_text("BETA = 3\n")
    assert tag_of(context, dockerfile) != before


@pytest.mark.parametrize(
    ("dockerfile", "changed", "retagged"),
    [
        # ARG substitution: only what the value names
        ("FROM x\nARG APP=alpha\nCOPY ${APP}/ ./\n", "alpha/app.py", True),
        ("FROM x\nARG APP=alpha\nCOPY ${APP}/ ./\n", "beta/app.py", False),
        ("ARG APP=beta\nFROM scratch\nARG APP\nCOPY $APP/app.py /\n", "beta/app.py", True),
        ("FROM x\nENV APP=beta\nCOPY ${APP:-alpha}/ /\n", "alpha/app.py", False),
        # JSON form, paths with spaces, continuation lines and the escape directive
        ('FROM x\nCOPY ["with space/a.txt", "/d/"]\n', "with space/a.txt", True),
        ("# escape=`\nFROM x\nCOPY kit `\n  beta /d/\n", "beta/app.py", True),
        ("FROM x\nCOPY kit \\\n  # a comment\n  beta /d/\n", "beta/app.py", True),
        # --exclude: excluded files are no input
        ("FROM x\nCOPY --exclude=*.txt alpha /a/\n", "alpha/requirements.txt", False),
        ("FROM x\nCOPY --exclude=*.txt alpha /a/\n", "alpha/app.py", True),
        ("FROM x\nCOPY --exclude=app.py --parents alpha/*.py beta/ /a/\n", "beta/app.py", False),
        # --from: another stage's files, and that stage's own inputs
        ("FROM x AS b\nCOPY beta /b\nFROM y\nCOPY --from=b /b /b\n", "beta/app.py", True),
        ("FROM x AS b\nCOPY beta /b\nFROM y\nCOPY --from=b /b /b\n", "alpha/app.py", False),
        ("FROM x AS b\nCOPY beta /b\nFROM y\nCOPY --from=nginx /b /b\n", "beta/app.py", False),
        ("FROM x AS b\nCOPY beta /b\nFROM b\nRUN true\n", "beta/app.py", True),
        # RUN --mount: a bind from the context is an input; a cache or another stage's not
        ("FROM x\nRUN --mount=type=bind,source=alpha/requirements.txt,target=/r pip\n",
         "alpha/requirements.txt", True),
        ("FROM x\nRUN --mount=source=alpha,target=/a make\n", "alpha/app.py", True),
        ("FROM x\nRUN --mount=type=cache,target=/root/.cache pip\n", "alpha/app.py", False),
        ("FROM x AS b\nFROM y\nRUN --mount=from=b,source=/alpha,target=/a make\n",
         "alpha/app.py", False),
        # heredocs are written in the Dockerfile; ADD's URLs are fetched by the build
        ("FROM x\nCOPY <<EOF /kit\nalpha\nEOF\n", "alpha/app.py", False),
        ("FROM x\nADD https://example.com/alpha /alpha\n", "alpha/app.py", False),
        ("FROM x\nADD --chmod=644 --link alpha.tar /\n", "alpha.tar", True),
        # globs follow Go's filepath.Match: * does not cross /
        ("FROM x\nCOPY al*/app.py /\n", "alpha/app.py", True),
        ("FROM x\nCOPY a*/app.py /\n", "alpha/x/app.py", False),
    ],
)  # fmt: skip
def test_copy_forms_flags_and_mounts(
    tmp_path: Path, dockerfile: str, changed: str, retagged: bool
) -> None:
    context = shared_context(tmp_path)
    write(context, {"with space/a.txt": "a", "alpha.tar": "t", "alpha/x/app.py": "x"})
    before = tag_of(context, dockerfile)
    (context / changed).write_text("changed\n")
    assert (tag_of(context, dockerfile) != before) is retagged


def test_sources_of_the_stages_the_build_needs_only() -> None:
    parsed = parse(
        "FROM a AS unused\nCOPY beta /b\n"
        "FROM a AS deps\nCOPY --chown=1:1 --chmod=644 src/ \\\n    lib /app/\n"
        "FROM b\nCOPY --from=deps /app /app\nCOPY ./kit/ /kit\n"
    )
    sources = context_sources(parsed)
    assert sources is not None
    assert [(s.pattern, s.line) for s in sources] == [("src", 4), ("lib", 4), ("kit", 8)]


def test_a_broken_dockerfile_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    context = shared_context(tmp_path)
    with pytest.raises(DockerfileError, match=r"probe\.Dockerfile:2: unknown instruction"):
        tag_of(context, "FROM x\nCOPPY a b\n")


@pytest.mark.parametrize("service", ["frontend", "backend_public", "backend_private"])
def test_the_demo_services_copy_their_own_package_and_the_kit(service: str) -> None:
    dockerfile = ROOT / "services" / service / "Dockerfile"
    sources = context_sources(parse_file(dockerfile))
    assert sources is not None
    assert {s.pattern.split("/")[0] for s in sources} == {service, "service_kit"}
    sent = context_files(ROOT / "services", dockerfile)  # .dockerignore keeps the tests out
    assert not any("tests" in path.parts for path in sent)
    assert any(path.parts[:2] == ("service_kit", "downstream.py") for path in sent)
