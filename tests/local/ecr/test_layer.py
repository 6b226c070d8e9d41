"""Unpacking layers: what a hostile tar cannot do to the folder it is unpacked into."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from fargo.local.ecr import layer
from fargo.local.ecr.layer import UnsafeLayerError, extract_layer, write_layer


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    buffer.seek(0)
    return buffer


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


HOSTILE = {
    "upward path": [(entry("../evil"), b"x")],
    "nested upward path": [(entry("a/../../evil"), b"x")],
    "absolute path": [(entry("/tmp/evil"), b"x")],
    "absolute symlink": [(entry("link", tarfile.SYMTYPE, "/etc"), b"")],
    "upward symlink": [(entry("link", tarfile.SYMTYPE, "../outside"), b"")],
    "symlink chain": [
        (entry("d", tarfile.SYMTYPE, "."), b""),
        (entry("s", tarfile.SYMTYPE, "d/.."), b""),
        (entry("s/evil"), b"x"),
    ],
    "write through symlink": [(entry("d", tarfile.SYMTYPE, "."), b""), (entry("d/../evil"), b"x")],
    "hard link outside": [(entry("h", tarfile.LNKTYPE, "../outside"), b"")],
    "character device": [(entry("dev", tarfile.CHRTYPE), b"")],
    "fifo": [(entry("fifo", tarfile.FIFOTYPE), b"")],
    "whiteout": [(entry("pkg/.wh.gone"), b"")],
}


@pytest.fixture(params=["data filter", "own checks"])
def unpacking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Python's ``data`` filter (3.11.4+), and the checks fargo makes where it is missing."""
    if request.param == "own checks":
        monkeypatch.setattr(layer, "HAVE_DATA_FILTER", False)
    elif not layer.HAVE_DATA_FILTER:
        pytest.skip("this Python has no tarfile data filter (PEP 706)")
    return str(request.param)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_entries_are_refused(tmp_path: Path, case: str, unpacking: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").write_text("keep")
    with pytest.raises(UnsafeLayerError):
        extract_layer(tar_of(*HOSTILE[case]), root, compressed=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "root"]
    assert (tmp_path / "outside").read_text() == "keep"


def test_a_layer_round_trips_with_its_digest(tmp_path: Path, unpacking: str) -> None:
    source = tmp_path / "source"
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "b" / "file").write_text("content")
    (source / "a" / "link").symlink_to("b/file")
    (source / "skip").write_text("left out")
    out = io.BytesIO()
    diff_id = write_layer(source, out, exclude={"skip"})
    out.seek(0)
    assert extract_layer(out, tmp_path / "copy") == diff_id
    assert (tmp_path / "copy" / "a" / "link").read_text() == "content"
    assert not (tmp_path / "copy" / "skip").exists()


def test_special_files_do_not_go_into_a_layer(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafeLayerError, match="fifo"):
        write_layer(tmp_path, io.BytesIO())
