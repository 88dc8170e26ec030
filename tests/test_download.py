"""Download, resume, verify and extract, against a loopback HTTP server the tests start.

Nothing here touches the internet: the server listens on 127.0.0.1 on a free port and
serves bytes the tests build. Its handler can cut the connection, ignore ``Range`` or
serve wrong bytes, which is how the failure paths of ``ldl.data.download`` are exercised.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from ldl.data import indexers, on_disk, registry
from ldl.data.archives import extract_archive
from ldl.data.download import download_file, file_checksum
from ldl.data.file_checks import ChecksumMismatch, UnsafeArchive
from ldl.data.registry import DatasetSpec, DatasetUnavailable, RemoteFile

# --------------------------------------------------------------------------------------
# The loopback server
# --------------------------------------------------------------------------------------


@dataclass
class Behaviour:
    """What the server serves and how it misbehaves; tests change it between calls."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: int | None = None  # send this many body bytes, then hang up (once)
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    wrong_bytes: bool = False  # serve corrupted bytes of the right length
    requests: list[dict[str, str | None]] = field(default_factory=list)


class RangeHandler(BaseHTTPRequestHandler):
    """A GET handler that supports ``Range: bytes=N-`` (206) and can misbehave on request."""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        behaviour: Behaviour = self.server.behaviour  # type: ignore[attr-defined]
        name = self.path.lstrip("/")
        range_header = self.headers.get("Range")
        behaviour.requests.append({"path": name, "range": range_header})
        if name not in behaviour.files:
            self.send_error(404)
            return
        body = behaviour.files[name]
        if behaviour.wrong_bytes:
            body = bytes(byte ^ 0xFF for byte in body)

        start = 0
        if range_header and not behaviour.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if behaviour.cut_after is not None:
            self.wfile.write(payload[: behaviour.cut_after])
            behaviour.cut_after = None
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@dataclass
class LoopbackServer:
    base_url: str
    behaviour: Behaviour

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@contextmanager
def loopback(handler: type[BaseHTTPRequestHandler], **attributes: object) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 in a thread, ``attributes`` set on the server; yield its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for name, value in attributes.items():
        setattr(httpd, name, value)  # the handler reads them as self.server.<name>
    # A short poll interval makes shutdown() return quickly at teardown.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server():
    behaviour = Behaviour()
    with loopback(RangeHandler, behaviour=behaviour) as base_url:
        yield LoopbackServer(base_url, behaviour)


PAYLOAD = random.Random(0).randbytes(50_000)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


# --------------------------------------------------------------------------------------
# Archives built by the tests
# --------------------------------------------------------------------------------------


def jpeg_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def image_members(prefix: str, counts: dict[str, int]) -> dict[str, bytes]:
    """``{"<prefix>/<split>/<class>/<i>.jpg": jpeg}`` for ``counts = {"train/cats": 3, ...}``."""
    return {
        f"{prefix}/{folder}/{i}.jpg": jpeg_bytes((40 * i % 256, 80, 160))
        for folder, count in counts.items()
        for i in range(count)
    }


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary folders that an extraction may have left behind."""
    return sorted(path.name for path in folder.iterdir() if ".tmp-" in path.name)


# --------------------------------------------------------------------------------------
# download_file
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_file_checksum_matches_hashlib(tmp_path, algorithm):
    path = tmp_path / "blob.bin"
    path.write_bytes(PAYLOAD)
    assert file_checksum(path, algorithm) == hashlib.new(algorithm, PAYLOAD).hexdigest()


def test_download_verifies_and_renames(server, tmp_path, capsys):
    server.behaviour.files["blob.bin"] = PAYLOAD
    dest = tmp_path / "sub" / "blob.bin"
    result = download_file(
        server.url("blob.bin"), dest, checksum=PAYLOAD_SHA256, expected_size=len(PAYLOAD), progress=True
    )
    assert "blob.bin" in capsys.readouterr().err  # the tqdm bar names the file
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_suffix(".bin.part").exists()
    assert server.behaviour.requests == [{"path": "blob.bin", "range": None}]


def test_cut_connection_keeps_part_and_next_call_resumes(server, tmp_path):
    server.behaviour.files["blob.bin"] = PAYLOAD
    server.behaviour.cut_after = 20_000
    dest = tmp_path / "blob.bin"
    part = tmp_path / "blob.bin.part"

    with pytest.raises(ConnectionError, match="run again to resume"):
        download_file(
            server.url("blob.bin"), dest, checksum=PAYLOAD_SHA256, progress=False, chunk_size=4096
        )
    assert not dest.exists()
    assert part.read_bytes() == PAYLOAD[:20_000]

    download_file(server.url("blob.bin"), dest, checksum=PAYLOAD_SHA256, progress=False, chunk_size=4096)
    assert server.behaviour.requests[-1]["range"] == "bytes=20000-"
    assert file_checksum(dest, "sha256") == PAYLOAD_SHA256
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.behaviour.files["blob.bin"] = PAYLOAD
    server.behaviour.ignore_range = True
    dest = tmp_path / "blob.bin"
    # A stale .part whose bytes are NOT a prefix of the file: appending would corrupt it.
    (tmp_path / "blob.bin.part").write_bytes(b"x" * 10_000)

    download_file(server.url("blob.bin"), dest, checksum=PAYLOAD_SHA256, progress=False)
    assert server.behaviour.requests[-1]["range"] == "bytes=10000-"
    assert dest.read_bytes() == PAYLOAD


def test_wrong_bytes_raise_checksum_mismatch_then_right_bytes_succeed(server, tmp_path):
    server.behaviour.files["blob.bin"] = PAYLOAD
    server.behaviour.wrong_bytes = True
    dest = tmp_path / "blob.bin"

    with pytest.raises(ChecksumMismatch) as caught:
        download_file(server.url("blob.bin"), dest, checksum=PAYLOAD_SHA256, progress=False)
    message = str(caught.value)
    assert PAYLOAD_SHA256 in message  # expected
    assert hashlib.sha256(bytes(b ^ 0xFF for b in PAYLOAD)).hexdigest() in message  # actual
    assert "run the same command again" in message
    assert not dest.exists() and not (tmp_path / "blob.bin.part").exists()

    server.behaviour.wrong_bytes = False
    download_file(server.url("blob.bin"), dest, checksum=PAYLOAD_SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_wrong_size_is_a_mismatch(server, tmp_path):
    server.behaviour.files["blob.bin"] = PAYLOAD
    with pytest.raises(ChecksumMismatch, match=f"expected {len(PAYLOAD) + 1} bytes, got {len(PAYLOAD)}"):
        download_file(
            server.url("blob.bin"), tmp_path / "blob.bin", expected_size=len(PAYLOAD) + 1, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_verified_dest_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(PAYLOAD)
    download_file(server.url("blob.bin"), dest, checksum=PAYLOAD_SHA256, progress=False)
    assert server.behaviour.requests == []


def test_complete_part_is_verified_when_server_says_range_not_satisfiable(server, tmp_path):
    server.behaviour.files["blob.bin"] = PAYLOAD
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD)
    dest = download_file(
        server.url("blob.bin"), tmp_path / "blob.bin", checksum=PAYLOAD_SHA256, progress=False
    )
    assert server.behaviour.requests == [{"path": "blob.bin", "range": f"bytes={len(PAYLOAD)}-"}]
    assert dest.read_bytes() == PAYLOAD


# --------------------------------------------------------------------------------------
# extract_archive
# --------------------------------------------------------------------------------------

MEMBERS = image_members("pets", {"train/cats": 2, "validation/dogs": 1})


@pytest.mark.parametrize(
    ("filename", "build"),
    [
        ("pets.zip", zip_bytes),
        ("pets.tar", lambda m: tar_bytes(m, "w")),
        ("pets.tar.gz", tar_bytes),
        ("pets.tgz", tar_bytes),
    ],
)
def test_extract_archive_unpacks_into_place(tmp_path, filename, build):
    archive = tmp_path / filename
    archive.write_bytes(build(MEMBERS))
    dest = extract_archive(archive, tmp_path / "out")
    extracted = {
        path.relative_to(dest).as_posix(): path.read_bytes()
        for path in dest.rglob("*")
        if path.is_file()
    }
    assert extracted == MEMBERS
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("filename", "build"), [("evil.zip", zip_bytes), ("evil.tar.gz", tar_bytes)])
@pytest.mark.parametrize("bad_name", ["../escaped.txt", "/tmp/absolute-ldl-test.txt"])
def test_extract_archive_refuses_members_outside_the_folder(tmp_path, filename, build, bad_name):
    archive = tmp_path / "in" / filename
    archive.parent.mkdir()
    archive.write_bytes(build({"ok/a.txt": b"fine", bad_name: b"evil"}))
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "in" / "out")
    assert not (tmp_path / "in" / "out").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert leftovers(tmp_path / "in") == []


def test_extract_archive_refuses_a_tar_link_pointing_outside(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        link = tarfile.TarInfo("ok/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../../../etc/passwd"
        bundle.addfile(link)
    archive = tmp_path / "links.tar.gz"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_extract_archive_never_overwrites(tmp_path):
    archive = tmp_path / "pets.zip"
    archive.write_bytes(zip_bytes(MEMBERS))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"


# --------------------------------------------------------------------------------------
# prepare() end to end, served through LDL_MIRROR
# --------------------------------------------------------------------------------------

TINY_COUNTS = {"train/cats": 3, "train/dogs": 3, "validation/cats": 2, "validation/dogs": 2}


def tiny_spec(**changes) -> DatasetSpec:
    """A fake registry entry shaped like ``cats_and_dogs`` (official URL unreachable on purpose)."""
    fields = dict(
        name="tiny",
        description="test archive",
        files=(RemoteFile("https://example.invalid/tiny.zip", "tiny.zip", None, "sha256"),),
        folder="tiny/tiny_filtered",
        splits=("train", "validation"),
        local_only=False,
        indexer=indexers.index_split_folders,
        layout="train/{cats,dogs}/*.jpg and validation/{cats,dogs}/*.jpg",
        image_counts=tuple(TINY_COUNTS.items()),
    )
    fields.update(changes)
    return DatasetSpec(**fields)


@pytest.fixture
def mirrored(server, tmp_path, monkeypatch):
    """LDL_DATA in tmp_path, LDL_MIRROR on the loopback server, and a ``tiny`` registry entry."""
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("LDL_MIRROR", server.base_url)
    monkeypatch.setitem(registry.REGISTRY, "tiny", tiny_spec())
    return server


def test_prepare_downloads_verifies_and_extracts(mirrored, tmp_path):
    archive = zip_bytes(image_members("tiny_filtered", TINY_COUNTS))
    mirrored.behaviour.files["tiny.zip"] = archive
    data = tmp_path / "data"
    assert on_disk.dataset_status("tiny") == "missing"

    root = on_disk.prepare("tiny", progress=False)

    assert root == data / "tiny" / "tiny_filtered"
    assert on_disk.dataset_status("tiny") == "ready"
    assert (data / "downloads" / "tiny.zip").read_bytes() == archive
    assert leftovers(data) == []
    train = on_disk.load_index("tiny", "train")
    assert train.classes == ["cats", "dogs"]
    assert train.counts() == {"cats": 3, "dogs": 3}
    assert len(mirrored.behaviour.requests) == 1  # load_index found it ready: no new request


def test_prepare_merges_an_archive_and_a_plain_file(mirrored, tmp_path, monkeypatch):
    spec = tiny_spec(
        name="tiny2",
        folder="tiny2",
        files=(
            RemoteFile("https://example.invalid/images.tar.gz", "images.tar.gz", None, "sha256"),
            RemoteFile("https://example.invalid/labels.txt", "labels.txt", None, "sha256"),
        ),
        required=("labels.txt",),
    )
    monkeypatch.setitem(registry.REGISTRY, "tiny2", spec)
    mirrored.behaviour.files["images.tar.gz"] = tar_bytes(
        image_members("train", {"cats": 3, "dogs": 3})
        | image_members("validation", {"cats": 2, "dogs": 2})
    )
    mirrored.behaviour.files["labels.txt"] = b"cats\ndogs\n"

    root = on_disk.prepare("tiny2", progress=False)

    assert (root / "labels.txt").read_bytes() == b"cats\ndogs\n"
    assert on_disk.load_index("tiny2", "validation").counts() == {"cats": 2, "dogs": 2}
    assert leftovers(tmp_path / "data") == []


def test_prepare_rejects_a_wrong_layout_and_leaves_nothing(mirrored, tmp_path):
    wrong = dict(TINY_COUNTS, **{"validation/dogs": 1})
    mirrored.behaviour.files["tiny.zip"] = zip_bytes(image_members("tiny_filtered", wrong))
    with pytest.raises(DatasetUnavailable, match="expected 2"):
        on_disk.prepare("tiny", progress=False)
    data = tmp_path / "data"
    assert not (data / "tiny").exists()
    assert leftovers(data) == []


def test_prepare_refuses_a_path_traversal_archive(mirrored, tmp_path):
    members = image_members("tiny_filtered", TINY_COUNTS) | {"../../escaped.txt": b"evil"}
    mirrored.behaviour.files["tiny.zip"] = zip_bytes(members)
    with pytest.raises(UnsafeArchive):
        on_disk.prepare("tiny", progress=False)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "data" / "tiny").exists()
    assert leftovers(tmp_path / "data") == []


def test_prepare_after_a_cut_connection_resumes(mirrored, tmp_path):
    archive = zip_bytes(image_members("tiny_filtered", TINY_COUNTS))
    mirrored.behaviour.files["tiny.zip"] = archive
    mirrored.behaviour.cut_after = len(archive) // 2

    with pytest.raises(DatasetUnavailable) as caught:
        on_disk.prepare("tiny", progress=False)
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert (tmp_path / "data" / "downloads" / "tiny.zip.part").stat().st_size == len(archive) // 2

    root = on_disk.prepare("tiny", progress=False)
    assert mirrored.behaviour.requests[-1]["range"] == f"bytes={len(archive) // 2}-"
    assert len(on_disk.load_index("tiny", "train")) == 6
    assert root.is_dir()


def test_prepare_with_download_false_uses_archives_already_there(mirrored, tmp_path):
    downloads = tmp_path / "data" / "downloads"
    downloads.mkdir(parents=True)
    with pytest.raises(DatasetUnavailable, match="download=False"):
        on_disk.prepare("tiny", download=False, progress=False)

    (downloads / "tiny.zip").write_bytes(zip_bytes(image_members("tiny_filtered", TINY_COUNTS)))
    root = on_disk.prepare("tiny", download=False, progress=False)
    assert on_disk.load_index("tiny", "validation").counts() == {"cats": 2, "dogs": 2}
    assert root.is_dir()
    assert mirrored.behaviour.requests == []
