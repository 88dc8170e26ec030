"""What a hostile network and a busy machine do to ``prepare``: bad downloads, races, full disks.

Each test is the regression test of one defect a hostile test found (see each docstring).
Nothing touches the internet: a loopback server on 127.0.0.1 serves bytes the tests build,
and misbehaves on request (an HTML error page with status 200, a file that changes between
two requests, one byte at a time).
"""

from __future__ import annotations

import io
import multiprocessing
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from ldl.data import download, on_disk, registry
from ldl.data.download import download_file
from ldl.data.file_checks import UnsafeArchive
from ldl.data.registry import DatasetUnavailable, RemoteFile
from tests.test_download import TINY_COUNTS, image_members, leftovers, loopback, tar_bytes, tiny_spec, zip_bytes

GOOD = zip_bytes(image_members("tiny_filtered", TINY_COUNTS))
HTML = b"<!DOCTYPE html><html><body><h1>Quota exceeded</h1></body></html>\n" * 20

# --------------------------------------------------------------------------------------
# A loopback server that misbehaves
# --------------------------------------------------------------------------------------


@dataclass
class Hostile:
    """What the server serves and how; tests change it between calls."""

    files: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # extra headers per file
    cut_after: int | None = None  # send this many body bytes, then hang up (once)
    chunk_delay: float = 0.0  # seconds between 1 KiB chunks: slow but steady
    byte_interval: float | None = None  # one byte per this many seconds (a trickle)
    give_up_after: float = 4.0  # a trickle stops after this long, so no test can hang
    requests: list[dict[str, str | None]] = field(default_factory=list)


class HostileHandler(BaseHTTPRequestHandler):
    """GET with ``Range: bytes=N-`` support (206), extra headers, and slow bodies."""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        hostile: Hostile = self.server.hostile  # type: ignore[attr-defined]
        name = self.path.lstrip("/")
        range_header = self.headers.get("Range")
        hostile.requests.append({"path": name, "range": range_header})
        if name not in hostile.files:
            self.send_error(404)
            return
        body = hostile.files[name]
        start = int(range_header.removeprefix("bytes=").split("-")[0]) if range_header else 0
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        for key, value in hostile.headers.get(name, {}).items():
            self.send_header(key, value)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            self._send(hostile, payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _send(self, hostile: Hostile, payload: bytes) -> None:
        if hostile.cut_after is not None:
            self.wfile.write(payload[: hostile.cut_after])
            hostile.cut_after = None
            self.close_connection = True
            return
        if hostile.byte_interval is not None:
            began = time.monotonic()
            for byte in payload:
                if time.monotonic() - began > hostile.give_up_after:
                    self.close_connection = True
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(hostile.byte_interval)
            return
        for offset in range(0, len(payload), 1024):
            self.wfile.write(payload[offset : offset + 1024])
            self.wfile.flush()
            time.sleep(hostile.chunk_delay)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@dataclass
class Served:
    base_url: str
    hostile: Hostile

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@pytest.fixture
def hostile_server():
    hostile = Hostile()
    with loopback(HostileHandler, hostile=hostile) as base_url:
        yield Served(base_url, hostile)


@pytest.fixture
def data(hostile_server, tmp_path, monkeypatch) -> Path:
    """LDL_DATA in tmp_path, LDL_MIRROR on the hostile server, a ``tiny`` entry without checksum."""
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("LDL_MIRROR", hostile_server.base_url)
    monkeypatch.setitem(registry.REGISTRY, "tiny", tiny_spec())
    return tmp_path / "data"


def corrupt_member_data(archive: bytes) -> bytes:
    """The same zip with a byte of the first member's data flipped: listing fine, CRC wrong."""
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        first = bundle.infolist()[0]
    # The local header is 30 bytes plus the name and the extra field, then the data.
    offset = first.header_offset + 30 + len(first.filename.encode()) + len(first.extra) + 5
    damaged = bytearray(archive)
    damaged[offset] ^= 0xFF
    return bytes(damaged)


def stored_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name, payload in members.items():
            bundle.writestr(name, payload)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# 1. A bad download is never kept
# --------------------------------------------------------------------------------------


def test_html_error_page_with_status_200_is_not_kept(hostile_server, data):
    """Before: the page was kept as tiny.zip, and every later run failed with
    ``ValueError: ... is not a .zip or .tar(.gz) archive`` without a request."""
    hostile_server.hostile.files["tiny.zip"] = HTML
    hostile_server.hostile.headers["tiny.zip"] = {"Content-Type": "text/html; charset=utf-8"}
    with pytest.raises(download.BadDownload) as caught:
        on_disk.prepare("tiny", progress=False)
    message = str(caught.value)
    assert "text/html" in message and hostile_server.url("tiny.zip") in message
    assert "again" in message
    assert not (data / "downloads" / "tiny.zip").exists()
    assert not (data / "downloads" / "tiny.zip.part").exists()

    hostile_server.hostile.files["tiny.zip"] = GOOD
    hostile_server.hostile.headers.clear()
    root = on_disk.prepare("tiny", progress=False)
    assert root.is_dir() and len(hostile_server.hostile.requests) == 2


@pytest.mark.parametrize(
    ("filename", "bad"),
    [
        ("tiny.zip", GOOD[: len(GOOD) // 2]),  # truncated: no central directory
        ("tiny.zip", HTML),  # an error page served as application/octet-stream
        ("tiny.tar.gz", tar_bytes(image_members("tiny_filtered", TINY_COUNTS))[:300]),
        ("tiny.zip", zip_bytes({})),  # opens, but holds nothing
    ],
    ids=["truncated-zip", "html-as-binary", "truncated-tgz", "empty-zip"],
)
def test_an_unusable_archive_is_moved_aside_and_fetched_again(hostile_server, data, monkeypatch, filename, bad):
    """Before: kept in downloads/; every later run failed the same way (``BadZipFile``,
    ``ValueError: not a .zip or .tar(.gz) archive``) without a request."""
    spec = tiny_spec(files=(RemoteFile(f"https://example.invalid/{filename}", filename, None, "sha256"),))
    monkeypatch.setitem(registry.REGISTRY, "tiny", spec)
    hostile_server.hostile.files[filename] = bad
    with pytest.raises(download.BadDownload) as caught:
        on_disk.prepare("tiny", progress=False)
    message = str(caught.value)
    kept = data / "downloads" / filename
    assert f"{kept}.bad" in message and "downloaded again" in message
    assert not kept.exists() and Path(f"{kept}.bad").read_bytes() == bad

    good = GOOD if filename.endswith(".zip") else tar_bytes(image_members("tiny_filtered", TINY_COUNTS))
    hostile_server.hostile.files[filename] = good
    assert on_disk.prepare("tiny", progress=False).is_dir()
    assert kept.read_bytes() == good
    assert len(hostile_server.hostile.requests) == 2


def test_a_zip_with_corrupt_member_data_is_moved_aside_when_unpacking_fails(hostile_server, data):
    """Before: ``zipfile.BadZipFile: Bad CRC-32`` on every run; the archive stayed."""
    good = stored_zip(image_members("tiny_filtered", TINY_COUNTS))
    hostile_server.hostile.files["tiny.zip"] = corrupt_member_data(good)
    with pytest.raises(download.BadDownload, match="moved aside"):
        on_disk.prepare("tiny", progress=False)
    assert not (data / "downloads" / "tiny.zip").exists()
    assert (data / "downloads" / "tiny.zip.bad").exists()
    assert leftovers(data) == []

    hostile_server.hostile.files["tiny.zip"] = good
    assert on_disk.prepare("tiny", progress=False).is_dir()


def test_an_unsafe_archive_is_moved_aside(hostile_server, data):
    """Before: ``UnsafeArchive`` on every run from the same kept file, never saying to delete it."""
    hostile_server.hostile.files["tiny.zip"] = zip_bytes(
        image_members("tiny_filtered", TINY_COUNTS) | {"../../escaped.txt": b"evil"}
    )
    with pytest.raises(UnsafeArchive, match="moved aside"):
        on_disk.prepare("tiny", progress=False)
    assert not (data / "downloads" / "tiny.zip").exists()
    assert (data / "downloads" / "tiny.zip.bad").exists()
    assert not (data.parent / "escaped.txt").exists()


def test_a_bad_file_left_by_an_older_version_is_downloaded_again(hostile_server, data):
    """Before: ``ValueError: ... is not a .zip or .tar(.gz) archive`` forever, no request made."""
    (data / "downloads").mkdir(parents=True)
    (data / "downloads" / "tiny.zip").write_bytes(HTML)
    hostile_server.hostile.files["tiny.zip"] = GOOD
    assert on_disk.prepare("tiny", progress=False).is_dir()
    assert hostile_server.hostile.requests == [{"path": "tiny.zip", "range": None}]
    assert (data / "downloads" / "tiny.zip").read_bytes() == GOOD


def test_the_listing_is_checked_before_the_archive_is_kept(hostile_server, data, monkeypatch):
    """A registry entry without checksum may give the image counts its archive must list."""
    listing = tuple((f"tiny_filtered/{folder}", count) for folder, count in TINY_COUNTS.items())
    remote = RemoteFile("https://example.invalid/tiny.zip", "tiny.zip", None, "sha256", listing=listing)
    monkeypatch.setitem(registry.REGISTRY, "tiny", tiny_spec(files=(remote,)))
    short = dict(TINY_COUNTS, **{"validation/dogs": 1})
    hostile_server.hostile.files["tiny.zip"] = zip_bytes(image_members("tiny_filtered", short))
    with pytest.raises(download.BadDownload, match="tiny_filtered/validation/dogs.* 1 image.*expected 2"):
        on_disk.prepare("tiny", progress=False)
    assert (data / "downloads" / "tiny.zip.bad").exists()
    assert not (data / "tiny").exists()


def test_cats_and_dogs_records_its_listing():
    """No checksum is published for it, so its archive's listing is checked instead."""
    (remote,) = registry.REGISTRY["cats_and_dogs"].files
    assert remote.checksum is None
    assert dict(remote.listing) == {
        f"cats_and_dogs_filtered/{folder}": count
        for folder, count in registry.REGISTRY["cats_and_dogs"].image_counts
    }


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"ETag": '"v1"'}, {"ETag": '"v2"'}),
        (
            {"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"},
            {"Last-Modified": "Tue, 02 Jan 2024 00:00:00 GMT"},
        ),
    ],
    ids=["etag", "last-modified"],
)
def test_a_resume_onto_a_file_changed_on_the_server_starts_over(hostile_server, data, old, new):
    """Before: the tail of the new file was glued onto the head of the old one."""
    version_1 = stored_zip(image_members("tiny_filtered", TINY_COUNTS))
    version_2 = stored_zip({name: b"2" + body for name, body in image_members("tiny_filtered", TINY_COUNTS).items()})
    hostile = hostile_server.hostile
    hostile.files["tiny.zip"], hostile.headers["tiny.zip"] = version_1, old
    hostile.cut_after = len(version_1) // 2
    with pytest.raises(DatasetUnavailable):
        on_disk.prepare("tiny", progress=False)

    hostile.files["tiny.zip"], hostile.headers["tiny.zip"] = version_2, new
    on_disk.prepare("tiny", progress=False)
    assert (data / "downloads" / "tiny.zip").read_bytes() == version_2
    assert hostile.requests[-1]["range"] is None  # the fresh start after the refused resume


def test_a_206_for_another_range_starts_over(tmp_path):
    """A ``Content-Range`` that does not start where the .part ends is not appended."""
    assert download.resume_is_consistent(206, "bytes 100-199/200", 100, {}, {}) is True
    assert download.resume_is_consistent(206, "bytes 0-199/200", 100, {}, {}) is False
    assert download.resume_is_consistent(206, None, 100, {}, {}) is False
    assert download.resume_is_consistent(200, None, 100, {}, {}) is False
    assert download.resume_is_consistent(206, "bytes 100-199/200", 100, {"etag": "a"}, {"etag": "b"}) is False


# --------------------------------------------------------------------------------------
# 2. Two processes preparing the same dataset
# --------------------------------------------------------------------------------------


def prepare_in_child(data: str, mirror: str, barrier, result: str) -> None:
    """Run in a spawned process: prepare ``tiny`` and write what happened to ``result``."""
    import contextlib
    import os
    import traceback

    os.environ["LDL_DATA"], os.environ["LDL_MIRROR"] = data, mirror
    registry.REGISTRY["tiny"] = tiny_spec()
    said = io.StringIO()
    barrier.wait(timeout=60)
    try:
        with contextlib.redirect_stderr(said):
            on_disk.prepare("tiny", progress=False)
        outcome = "ok"
    except BaseException:  # report everything to the parent, which asserts
        outcome = traceback.format_exc()
    Path(result).write_text(outcome + "\n---\n" + said.getvalue())


def test_two_processes_preparing_one_dataset_both_succeed(hostile_server, tmp_path):
    """Before: one failed with ``FileNotFoundError`` on the .part or ``OSError [Errno 39]``."""
    hostile_server.hostile.files["tiny.zip"] = GOOD
    hostile_server.hostile.chunk_delay = 2.5 / (len(GOOD) / 1024)  # about 2.5 s in all
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = [tmp_path / f"result-{i}.txt" for i in range(2)]
    args = (str(tmp_path / "data"), hostile_server.base_url, barrier)
    children = [context.Process(target=prepare_in_child, args=(*args, str(path))) for path in results]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    outcomes = [path.read_text().split("\n---\n") for path in results]
    assert [outcome for outcome, _ in outcomes] == ["ok", "ok"], outcomes
    said = "".join(words for _, words in outcomes)
    assert said.count("waiting for another process preparing 'tiny'") == 1, said
    assert len(hostile_server.hostile.requests) == 1  # the second found it ready
    assert leftovers(tmp_path / "data") == []


# --------------------------------------------------------------------------------------
# 3. Free disk space
# --------------------------------------------------------------------------------------


def fake_disk_usage(free_in_downloads: int, free_elsewhere: int):
    real = shutil.disk_usage

    def disk_usage(path):
        usage = real(path)
        free = free_in_downloads if Path(path).name == "downloads" else free_elsewhere
        return type(usage)(usage.total, usage.total - free, free)

    return disk_usage


def test_no_download_starts_without_the_space_for_it(hostile_server, data, monkeypatch):
    """Before: the download ran until ``ENOSPC`` and left a .part filling the disk."""
    hostile_server.hostile.files["tiny.zip"] = GOOD
    monkeypatch.setattr(shutil, "disk_usage", fake_disk_usage(1000, 10**12))
    with pytest.raises(download.NotEnoughSpace) as caught:
        on_disk.prepare("tiny", progress=False)
    message = str(caught.value)
    assert str(data / "downloads") in message and "tiny.zip" in message
    assert "1000 B free" in message
    assert not (data / "downloads" / "tiny.zip.part").exists()


def test_no_unpacking_starts_without_the_space_for_it(hostile_server, data, monkeypatch):
    """Before: a bare ``OSError: [Errno 28] No space left on device`` halfway through."""
    hostile_server.hostile.files["tiny.zip"] = GOOD
    monkeypatch.setattr(shutil, "disk_usage", fake_disk_usage(10**12, 1000))
    with pytest.raises(download.NotEnoughSpace) as caught:
        on_disk.prepare("tiny", progress=False)
    message = str(caught.value)
    assert "unpacking tiny.zip" in message and str(data) in message and "LDL_DATA" in message
    assert (data / "downloads" / "tiny.zip").read_bytes() == GOOD  # a good archive is kept
    assert leftovers(data) == [] and not (data / "tiny").exists()


def test_a_disk_filling_up_during_a_download_deletes_the_part(tmp_path):
    """Before: a bare ``ENOSPC``, and a .part left to fill the disk again on the next run."""
    import errno

    from tqdm.auto import tqdm

    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    part = tmp_path / "blob.bin.part"
    part.write_bytes(b"half")
    with pytest.raises(download.NotEnoughSpace, match="filled up") as caught, tqdm(disable=True) as bar:
        download._copy_body(io.BytesIO(bytes(100)), FullDisk(), bar, 10, (60.0, 1), "http://x/blob.bin", part)
    assert caught.value.errno == errno.ENOSPC
    assert not part.exists()


# --------------------------------------------------------------------------------------
# 4. A trickle never trips a per-read timeout
# --------------------------------------------------------------------------------------


def test_a_trickling_server_trips_the_stall_rule(hostile_server, tmp_path):
    """Before: one byte every 1.5 s never tripped the 30 s per-read timeout."""
    hostile_server.hostile.files["blob.bin"] = bytes(50_000)
    hostile_server.hostile.byte_interval = 0.05
    began = time.monotonic()
    with pytest.raises(download.DownloadStalled) as caught:
        download_file(
            hostile_server.url("blob.bin"), tmp_path / "blob.bin", progress=False, stall_window=0.5, stall_bytes=1000
        )
    assert time.monotonic() - began < 3
    message = str(caught.value)
    assert hostile_server.url("blob.bin") in message
    assert "LDL_MIRROR" in message and "by hand" in message
    assert isinstance(caught.value, TimeoutError)


def test_prepare_reports_a_stalled_download(hostile_server, data, monkeypatch):
    hostile_server.hostile.files["tiny.zip"] = GOOD
    hostile_server.hostile.byte_interval = 0.05
    monkeypatch.setattr(download, "STALL_WINDOW_S", 0.5)
    monkeypatch.setattr(download, "STALL_MIN_BYTES", 1000)
    with pytest.raises(DatasetUnavailable) as caught:
        on_disk.prepare("tiny", progress=False)
    assert isinstance(caught.value.__cause__, download.DownloadStalled)
    assert "LDL_MIRROR" in str(caught.value) and hostile_server.url("tiny.zip") in str(caught.value)


# --------------------------------------------------------------------------------------
# 5. LDL_DATA pointing at a file
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny", "synthetic", "cats_and_dogs_sample"])
def test_ldl_data_pointing_at_a_file_says_so(data, monkeypatch, name):
    """Before: ``FileExistsError: [Errno 17] File exists``."""
    a_file = data.parent / "notes.txt"
    a_file.write_text("not a folder")
    monkeypatch.setenv("LDL_DATA", str(a_file))
    with pytest.raises(NotADirectoryError) as caught:
        on_disk.prepare(name, progress=False)
    assert "LDL_DATA" in str(caught.value) and str(a_file) in str(caught.value)
