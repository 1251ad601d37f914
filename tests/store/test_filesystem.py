"""What only the filesystem store promises: durable commits, temporaries, real disk errors."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from glimpse.store import StoreConflict, StoreNotFound
from glimpse.store.filesystem import FilesystemStore
from tests.support.page_cache import require_direct_io, resident_bytes

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "images")


@pytest.fixture
def image_id() -> str:
    return str(uuid.uuid4())


def test_creates_its_data_directory(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "a" / "b")

    assert os.path.isdir(store.datadir)
    assert store.scheme == "file"
    assert store.store_id == "file"
    assert FilesystemStore(tmp_path, store_id="fast").store_id == "fast"


def test_location_is_a_file_uri_in_the_data_directory(
    store: FilesystemStore, image_id: str
) -> None:
    stored = store.begin_write(image_id).commit()

    assert stored.uri == f"file://{store.datadir}/{image_id}"
    assert stored.uri == store.uri_for(image_id)
    assert stored.metadata == {}
    assert store.local_path(stored.uri) == os.path.join(store.datadir, image_id)


def test_data_stays_in_a_hidden_temporary_until_commit(
    store: FilesystemStore, image_id: str
) -> None:
    writer = store.begin_write(image_id)
    writer.write(b"x" * 1000)
    final_path = os.path.join(store.datadir, image_id)

    (temporary,) = os.listdir(store.datadir)
    assert temporary.startswith(f".{image_id}.")
    assert temporary.endswith(".tmp")
    assert not os.path.exists(final_path)

    writer.commit()

    assert os.listdir(store.datadir) == [image_id]
    assert os.path.getsize(final_path) == 1000


def test_files_are_private_to_the_service_user(store: FilesystemStore, image_id: str) -> None:
    stored = store.begin_write(image_id).commit()

    path = store.local_path(stored.uri)
    assert path is not None
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0


def test_commit_fsyncs_file_then_directory(
    store: FilesystemStore, image_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A spy, not a fake: the real calls still happen; we only record their order.
    events: list[str] = []
    real_fsync, real_link = os.fsync, os.link

    def spy_fsync(fd: int) -> None:
        kind = "directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def spy_link(source: str, target: str) -> None:
        events.append("link")
        real_link(source, target)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "link", spy_link)
    writer = store.begin_write(image_id)
    writer.write(b"durable")

    writer.commit()

    assert events == ["fsync file", "link", "fsync directory"]


def test_commit_without_hard_links_renames(
    store: FilesystemStore, image_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some FUSE/SMB mounts refuse link(); this is what they answer.
    def no_link(source: str, target: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    writer = store.begin_write(image_id)
    writer.write(b"renamed")
    rival = store.begin_write(image_id)

    stored = writer.commit()
    with pytest.raises(StoreConflict):
        rival.commit()

    assert os.listdir(store.datadir) == [image_id]
    assert b"".join(store.read(stored.uri)) == b"renamed"


def test_conflict_is_detected_before_any_data_is_sent(
    store: FilesystemStore, image_id: str
) -> None:
    store.begin_write(image_id).commit()

    with pytest.raises(StoreConflict):
        store.begin_write(image_id)

    assert os.listdir(store.datadir) == [image_id]


@pytest.mark.parametrize("bad_id", ["", ".", "..", ".hidden", "../escape", "a/b", "nul\0"])
def test_image_ids_that_are_not_plain_file_names_are_refused(
    store: FilesystemStore, bad_id: str
) -> None:
    with pytest.raises(ValueError):
        store.begin_write(bad_id)


def test_locations_outside_the_data_directory_are_not_found(
    store: FilesystemStore, image_id: str, tmp_path: Path
) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"host file")
    writer = store.begin_write(image_id)
    writer.write(b"partial")
    temporary = os.path.join(store.datadir, os.listdir(store.datadir)[0])

    for uri in [
        f"file://{outside}",
        f"file://{store.datadir}/../secret",
        f"file://{store.datadir}",
        f"file://{temporary}",
        "file:///etc/passwd",
        f"file://localhost{store.datadir}/{image_id}",
        f"swift://{store.datadir}/{image_id}",
        f"{store.datadir}/{image_id}",
    ]:
        with pytest.raises(StoreNotFound):
            store.read(uri)
        with pytest.raises(StoreNotFound):
            store.delete(uri)
        with pytest.raises(StoreNotFound):
            store.stat(uri)
    assert outside.read_bytes() == b"host file"


def test_a_directory_is_not_image_data(store: FilesystemStore, image_id: str) -> None:
    os.mkdir(os.path.join(store.datadir, image_id))

    with pytest.raises(StoreNotFound):
        store.read(store.uri_for(image_id))
    with pytest.raises(StoreNotFound):
        store.delete(store.uri_for(image_id))


def test_reads_release_their_file(store: FilesystemStore, image_id: str) -> None:
    stored = store.begin_write(image_id).commit()
    before = len(os.listdir("/proc/self/fd"))

    exhausted = store.read(stored.uri)
    list(exhausted)
    closed = store.read(stored.uri)
    closed.close()  # type: ignore[attr-defined]

    assert len(os.listdir("/proc/self/fd")) == before


# --- stale temporaries -------------------------------------------------------

_KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from glimpse.store.filesystem import FilesystemStore

    writer = FilesystemStore(sys.argv[1]).begin_write(sys.argv[2])
    writer.write(os.urandom(100_000))
    print("written", flush=True)
    time.sleep(60)
    """
)


def _age(path: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_stale_temporaries_of_a_killed_writer_are_cleaned_up(store: FilesystemStore) -> None:
    crashed_id, committed_id, active_id = (str(uuid.uuid4()) for _ in range(3))
    with subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, store.datadir, crashed_id],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "written\n"
        child.send_signal(signal.SIGKILL)
    assert child.returncode == -signal.SIGKILL
    (crashed_temporary,) = os.listdir(store.datadir)
    old_committed = store.begin_write(committed_id).commit()
    active = store.begin_write(active_id)
    active.write(b"still uploading")
    leftover = os.path.join(store.datadir, crashed_temporary)
    _age(leftover, 7200)
    committed_path = store.local_path(old_committed.uri)
    assert committed_path is not None
    _age(committed_path, 7200)

    assert store.cleanup_stale_temporaries(3600, dry_run=True) == [leftover]
    assert os.path.exists(leftover)
    assert store.cleanup_stale_temporaries(3600) == [leftover]
    assert store.cleanup_stale_temporaries(3600) == []

    remaining = sorted(os.listdir(store.datadir))
    assert committed_id in remaining
    assert any(name.startswith(f".{active_id}.") for name in remaining)
    assert not any(name.startswith(f".{crashed_id}.") for name in remaining)
    active.commit()


def test_fresh_temporaries_are_kept(store: FilesystemStore, image_id: str) -> None:
    writer = store.begin_write(image_id)
    writer.write(b"recent")

    assert store.cleanup_stale_temporaries(3600) == []
    writer.commit()


def test_cleanup_ignores_files_that_only_look_alike(store: FilesystemStore) -> None:
    for name in [".notours.tmp", ".x.0123.tmp", "plain.tmp", ".x.0123456789abcdef.tmp.bak"]:
        path = os.path.join(store.datadir, name)
        Path(path).write_bytes(b"")
        _age(path, 7200)

    assert store.cleanup_stale_temporaries(0) == []


# --- running out of space -----------------------------------------------------

# Writes 1 MiB blocks until the store reports it is full, then aborts; prints
# what happened. Runs in a child so the test process keeps its own limits.
_FILL_THE_STORE = textwrap.dedent(
    """
    import json, os, signal, sys
    from glimpse.store import StoreFull
    from glimpse.store.filesystem import FilesystemStore

    # With RLIMIT_FSIZE the kernel sends SIGXFSZ, which kills by default;
    # ignored, the write fails with EFBIG instead.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    store = FilesystemStore(sys.argv[1])
    writer = store.begin_write("image")
    written = 0
    try:
        while written < 64 * 2**20:
            writer.write(b"x" * 2**20)
            written += 2**20
        outcome = "no error"
    except StoreFull as exc:
        outcome = "StoreFull: " + str(exc)
    writer.abort()
    print(json.dumps({"outcome": outcome, "written": written,
                      "left": os.listdir(store.datadir)}))
    """
)


def _run_fill(
    command: list[str], preexec_fn: Callable[[], None] | None = None
) -> dict[str, object]:
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, preexec_fn=preexec_fn
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def test_full_tmpfs_raises_store_full_and_leaves_nothing(tmp_path: Path) -> None:
    # A real 4 MiB tmpfs, mounted in a private user+mount namespace so the
    # test needs no root and leaves no mount behind.
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed")
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    probe = subprocess.run(
        [unshare, "-Urm", "mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()}")

    result = _run_fill(
        [
            unshare,
            "-Urm",
            "sh",
            "-c",
            'mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" -c "$3" "$1"',
            "sh",
            str(mountpoint),
            sys.executable,
            _FILL_THE_STORE,
        ]
    )

    assert str(result["outcome"]).startswith("StoreFull: ")
    assert "No space left on device" in str(result["outcome"])
    assert 3 * MiB <= int(str(result["written"])) <= 4 * MiB
    assert result["left"] == []


def test_file_size_limit_raises_store_full_and_leaves_nothing(tmp_path: Path) -> None:
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (5 * MiB, 5 * MiB))

    result = _run_fill(
        [sys.executable, "-c", _FILL_THE_STORE, str(tmp_path / "images")],
        preexec_fn=limit_file_size,
    )

    assert str(result["outcome"]).startswith("StoreFull: ")
    assert "File too large" in str(result["outcome"])
    assert result["written"] == 5 * MiB
    assert result["left"] == []


# Direct I/O: aligned blocks go to the disk without filling the page cache.


def _write_aligned_blocks(store: FilesystemStore, image_id: str, data: bytes) -> Path:
    """Write ``data`` as the upload pipeline does: in page-aligned blocks of 1 MiB."""
    from glimpse.data.blocks import Block

    block = Block(MiB)
    with store.begin_write(image_id) as writer:
        for start in range(0, len(data), MiB):
            piece = data[start : start + MiB]
            block.fill(0, piece)
            writer.write(block.view(len(piece)))
        stored = writer.commit()
    return Path(stored.uri.removeprefix("file://"))


@pytest.fixture
def disk_folder(tmp_path: Path) -> Path:
    """A folder on a filesystem that takes O_DIRECT (tmp_path, unless it is a tmpfs)."""
    require_direct_io(tmp_path)
    return tmp_path


def test_direct_writes_keep_the_image_out_of_the_page_cache(
    disk_folder: Path, image_id: str
) -> None:
    data = os.urandom(8 * MiB + 1000)  # a tail that is not a whole block
    path = _write_aligned_blocks(FilesystemStore(disk_folder / "direct"), image_id, data)
    # Only the tail, written buffered after the last whole 4 KiB, may be cached.
    assert resident_bytes(path) <= 4096
    assert path.read_bytes() == data


def test_buffered_writes_when_direct_io_is_off(disk_folder: Path, image_id: str) -> None:
    data = os.urandom(8 * MiB)
    store = FilesystemStore(disk_folder / "buffered", direct_io=False)
    path = _write_aligned_blocks(store, image_id, data)
    assert resident_bytes(path) == len(data)
    assert path.read_bytes() == data


def test_unaligned_buffers_fall_back_to_the_page_cache(disk_folder: Path, image_id: str) -> None:
    # bytes objects are not page-aligned: O_DIRECT refuses them, the data still lands.
    data = os.urandom(3 * MiB)
    store = FilesystemStore(disk_folder / "unaligned")
    with store.begin_write(image_id) as writer:
        writer.write(data[: 2 * MiB])
        writer.write(bytearray(data[2 * MiB :]))
        stored = writer.commit()
    assert Path(stored.uri.removeprefix("file://")).read_bytes() == data


def test_filesystems_without_direct_io_are_written_buffered(image_id: str) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm tmpfs here")
    folder = shm / f"glimpse-test-{image_id}"
    try:
        data = os.urandom(2 * MiB + 5)
        path = _write_aligned_blocks(FilesystemStore(folder), image_id, data)
        assert path.read_bytes() == data
    finally:
        shutil.rmtree(folder, ignore_errors=True)
