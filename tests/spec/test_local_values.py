"""A secret's local file must be git-ignored (fargo.spec.local_values): checked with real git
whenever a spec file is read, in every world; a spec's text alone is never checked."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests.spec.conftest import SHOP

from fargo.spec import SpecInvalid, World, check_spec, check_spec_text, load_spec

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

API_URL = '      API_URL: "http://${lb:edge.dns_name}"\n'
FILE_SECRET = (
    f"{API_URL}    secrets:\n"
    "      DB_PASSWORD: {ssm_parameter: /shop/db, local: {file: .secrets/db_password}}\n"
)
ZONE = (
    "certificate: {domain: shop.example.com}",
    "certificate: {domain: shop.example.com, hosted_zone: example.com}",
)
WORLDS: tuple[World, ...] = ("cloud", "twin")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree holding the shop spec, whose secret is the file .secrets/db_password."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "shop.yaml").write_text(SHOP.replace(API_URL, FILE_SECRET).replace(*ZONE))
    (repo / ".secrets").mkdir()
    (repo / ".secrets" / "db_password").write_text("hunter2\n")
    return repo


def problems(spec: Path, world: World) -> list[str]:
    with pytest.raises(SpecInvalid) as caught:
        check_spec(spec, world=world)
    return [p.render(spec) for p in caught.value.problems]


def line_of(spec: Path, needle: str) -> str:
    text = spec.read_text()
    index = text.index(needle)
    return f"{text.count(chr(10), 0, index) + 1}:{index - text.rfind(chr(10), 0, index)}"


@pytest.mark.parametrize("world", WORLDS)
def test_a_file_git_would_commit_is_refused_with_the_fix(repo: Path, world: World) -> None:
    spec = repo / "shop.yaml"

    assert problems(spec, world) == [
        f"{spec}:{line_of(spec, 'file: .secrets')}: "
        "services.web.secrets.DB_PASSWORD.local.file: .secrets/db_password is in the git work "
        f"tree {repo.resolve()} and not ignored: a `git add` would commit the secret "
        "(add .secrets/db_password (or a pattern matching it) to .gitignore)"
    ]
    with pytest.raises(SpecInvalid):
        load_spec(spec)  # every world refuses it


@pytest.mark.parametrize("world", WORLDS)
def test_an_ignored_file_is_taken(repo: Path, world: World) -> None:
    (repo / ".gitignore").write_text(".secrets/\n")

    report = check_spec(repo / "shop.yaml", world=world)

    local = report.spec.services["web"].secrets["DB_PASSWORD"].local
    assert local is not None and local.file == ".secrets/db_password"


def test_a_committed_file_is_refused_even_when_ignored_now(repo: Path) -> None:
    git(repo, "add", ".secrets/db_password")
    git(repo, "commit", "-q", "-m", "oops")
    (repo / ".gitignore").write_text(".secrets/\n")
    spec = repo / "shop.yaml"

    [problem] = problems(spec, "twin")

    assert problem.endswith(
        f"services.web.secrets.DB_PASSWORD.local.file: .secrets/db_password is committed to "
        f"the git repository at {repo.resolve()}: the secret is in its history "
        "(git rm --cached .secrets/db_password, add it to .gitignore, and rotate the secret)"
    )


def test_a_file_outside_the_work_tree_is_not_gits_business(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "db_password"
    spec = repo / "shop.yaml"
    spec.write_text(spec.read_text().replace(".secrets/db_password", str(outside)))

    assert check_spec(spec, world="twin").spec.services["web"].secrets


def test_a_spec_outside_any_work_tree_is_not_checked(repo: Path) -> None:
    shutil.rmtree(repo / ".git")

    assert check_spec(repo / "shop.yaml", world="twin").spec.services["web"].secrets


def test_spec_text_alone_is_never_checked_against_git(repo: Path) -> None:
    text = (repo / "shop.yaml").read_text()

    report = check_spec_text(text, repo / "shop.yaml", world="twin")

    assert report.spec.services["web"].secrets


def test_a_spec_in_a_subfolder_names_the_file_relative_to_the_work_tree(repo: Path) -> None:
    (repo / "deploy").mkdir()
    spec = repo / "deploy" / "shop.yaml"
    (repo / "shop.yaml").rename(spec)
    (repo / ".secrets").rename(repo / "deploy" / ".secrets")

    [problem] = problems(spec, "cloud")

    assert "deploy/.secrets/db_password is in the git work tree" in problem
    (repo / ".gitignore").write_text("deploy/.secrets/\n")
    assert check_spec(spec, world="cloud").spec
