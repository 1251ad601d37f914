"""Format inspection of real images made with qemu-img.

The image-making helpers here are shared with ``test_plugins``.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import struct
import subprocess
from typing import Any

import pytest

from glimpse.imports import inspection
from glimpse.imports.inspection import FormatMismatch, StreamInspector, UnsafeImage, inspect_file

QEMU_IMG = shutil.which("qemu-img")
requires_qemu_img = pytest.mark.skipif(
    QEMU_IMG is None, reason="qemu-img is not installed (apt-get install qemu-utils)"
)
MiB = 1 << 20


def qemu_img(*args: str) -> str:
    assert QEMU_IMG is not None
    return subprocess.run([QEMU_IMG, *args], check=True, capture_output=True, text=True).stdout


def qemu_info(path: pathlib.Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(qemu_img("info", "--output=json", str(path)))
    return info


def make_image(
    folder: pathlib.Path, name: str, fmt: str, size: str = "1M", *options: str
) -> pathlib.Path:
    """``qemu-img create -f fmt [options] folder/name size``."""
    path = folder / name
    qemu_img("create", "-f", fmt, *options, str(path), size)
    return path


def pattern(size: int) -> bytes:
    """Recognisable non-zero data (no MBR signature at byte 510)."""
    block = bytes(range(1, 251)) * 4
    return (block * (size // len(block) + 1))[:size]


def iso_bytes(blocks: int = 40, *, with_mbr: bool = False) -> bytes:
    """An ISO 9660 shape: a 32 KiB system area, then a primary volume descriptor."""
    system_area = bytearray(32 * 1024)
    if with_mbr:
        # A hybrid ISO, bootable as a disk: an MBR with one partition in the system area.
        system_area[446:462] = struct.pack("<B3BB3BII", 0x80, 0, 2, 0, 0x17, 0, 0, 0, 0, blocks)
        system_area[510:512] = b"\x55\xaa"
    pvd = bytearray(2048)
    pvd[0] = 1
    pvd[1:6] = b"CD001"
    pvd[6] = 1
    pvd[80:88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
    pvd[128:132] = struct.pack("<H", 2048) + struct.pack(">H", 2048)
    data = bytes(system_area) + bytes(pvd)
    return data + bytes(blocks * 2048 - len(data))


def mbr_disk(size: int = 2 * MiB, *, partition: bool = True) -> bytes:
    """A raw disk whose first sector is an MBR, with one Linux partition or none."""
    disk = bytearray(size)
    if partition:
        disk[446:462] = struct.pack("<B3BB3BII", 0x80, 0, 2, 0, 0x83, 0, 0, 0, 2048, 2048)
    disk[510:512] = b"\x55\xaa"
    return bytes(disk)


def stream(path: pathlib.Path, chunk_size: int) -> StreamInspector:
    inspector = StreamInspector()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            inspector.feed(chunk)
    return inspector


# --- self-contained images of every format are accepted and sized --------------------------

FORMATS = [
    # (qemu-img format, disk_format, options)
    ("qcow2", "qcow2", ()),
    ("vmdk", "vmdk", ()),
    ("vmdk", "vmdk", ("-o", "subformat=streamOptimized")),
    ("vpc", "vhd", ()),
    ("vhdx", "vhdx", ()),
    ("vdi", "vdi", ()),
    ("raw", "raw", ()),
]


@requires_qemu_img
@pytest.mark.parametrize(("qemu_format", "disk_format", "options"), FORMATS)
def test_a_self_contained_image_is_accepted_with_its_virtual_size(
    tmp_path: pathlib.Path, qemu_format: str, disk_format: str, options: tuple[str, ...]
) -> None:
    path = make_image(tmp_path, f"disk.{disk_format}", qemu_format, "3M", *options)

    found = inspect_file(str(path), disk_format)

    assert found == inspection.Inspection(
        disk_format, qemu_info(path)["virtual-size"], safe=True, reason=None
    )


@requires_qemu_img
@pytest.mark.parametrize(("qemu_format", "disk_format", "options"), FORMATS)
@pytest.mark.parametrize("chunk_size", [1, 7, 511, 4099, 65537, 3 * MiB])
def test_the_stream_inspector_agrees_with_inspect_file_whatever_the_chunks(
    tmp_path: pathlib.Path,
    qemu_format: str,
    disk_format: str,
    options: tuple[str, ...],
    chunk_size: int,
) -> None:
    path = make_image(tmp_path, f"disk.{disk_format}", qemu_format, "3M", *options)
    if chunk_size == 1 and path.stat().st_size > 2 * MiB:
        pytest.skip("byte-by-byte over megabytes is only slow, not more interesting")

    found = stream(path, chunk_size).finish(disk_format)

    assert found == inspect_file(str(path), disk_format)


# --- unsafe images are refused, whatever they claim to be -----------------------------------


@requires_qemu_img
@pytest.mark.parametrize("declared", ["qcow2", "raw", None])
@pytest.mark.parametrize("require_match", [True, False])
def test_a_qcow2_with_a_backing_file_is_refused(
    tmp_path: pathlib.Path, declared: str | None, require_match: bool
) -> None:
    make_image(tmp_path, "base.qcow2", "qcow2")
    child = make_image(tmp_path, "child.qcow2", "qcow2", "1M", "-b", "base.qcow2", "-F", "qcow2")

    with pytest.raises(UnsafeImage, match="backing file") as caught:
        inspect_file(str(child), declared, require_match=require_match)

    assert type(caught.value) is UnsafeImage
    assert caught.value.inspection == inspection.Inspection(
        "qcow2", MiB, safe=False, reason=str(caught.value)
    )
    assert caught.value.status == 400


@requires_qemu_img
def test_a_qcow2_with_an_external_data_file_is_refused(tmp_path: pathlib.Path) -> None:
    path = make_image(
        tmp_path, "disk.qcow2", "qcow2", "1M", "-o", f"data_file={tmp_path / 'disk.data'}"
    )

    with pytest.raises(UnsafeImage, match="external data file"):
        inspect_file(str(path), "qcow2")
    with pytest.raises(UnsafeImage, match="external data file"):
        stream(path, 4099).finish("qcow2", require_match=False)


@requires_qemu_img
@pytest.mark.parametrize("subformat", ["monolithicFlat", "twoGbMaxExtentFlat"])
def test_a_vmdk_whose_extents_are_other_files_is_refused(
    tmp_path: pathlib.Path, subformat: str
) -> None:
    descriptor = make_image(tmp_path, "disk.vmdk", "vmdk", "1M", "-o", f"subformat={subformat}")
    assert b"createType" in descriptor.read_bytes()

    with pytest.raises(UnsafeImage, match=f"(?i)createType {subformat}.*refused") as caught:
        inspect_file(str(descriptor), "vmdk")

    assert caught.value.inspection is not None
    assert caught.value.inspection.format == "vmdk"
    with pytest.raises(UnsafeImage, match=r"(?i)createType"):
        stream(descriptor, 7).finish("raw", require_match=False)


@requires_qemu_img
def test_the_vmdk_allow_list_can_narrow_the_accepted_create_types(tmp_path: pathlib.Path) -> None:
    sparse = make_image(tmp_path, "sparse.vmdk", "vmdk")
    optimized = make_image(
        tmp_path, "optimized.vmdk", "vmdk", "1M", "-o", "subformat=streamOptimized"
    )

    with pytest.raises(UnsafeImage, match="monolithicsparse are not accepted"):
        inspect_file(str(sparse), "vmdk", vmdk_allowed_types=["streamOptimized"])
    assert inspect_file(str(optimized), "vmdk", vmdk_allowed_types=["streamOptimized"]).safe
    with pytest.raises(UnsafeImage, match="allowed: none"):
        inspect_file(str(optimized), "vmdk", vmdk_allowed_types=[])


@requires_qemu_img
def test_qed_is_refused(tmp_path: pathlib.Path) -> None:
    path = make_image(tmp_path, "disk.qed", "qed")

    with pytest.raises(UnsafeImage, match="QED images are not accepted"):
        inspect_file(str(path), "qed")


@requires_qemu_img
def test_a_truncated_image_is_refused(tmp_path: pathlib.Path) -> None:
    whole = make_image(tmp_path, "disk.vhdx", "vhdx")
    truncated = tmp_path / "truncated.vhdx"
    truncated.write_bytes(whole.read_bytes()[: 200 * 1024])

    with pytest.raises(UnsafeImage, match="could not be inspected as vhdx"):
        inspect_file(str(truncated), "vhdx")


@requires_qemu_img
def test_content_that_is_two_formats_at_once_is_refused(tmp_path: pathlib.Path) -> None:
    path = make_image(tmp_path, "disk.qcow2", "qcow2")
    data = bytearray(path.read_bytes())
    data[446:462] = struct.pack("<B3BB3BII", 0x80, 0, 2, 0, 0x83, 0, 0, 0, 2048, 2048)
    data[510:512] = b"\x55\xaa"
    path.write_bytes(bytes(data))

    with pytest.raises(UnsafeImage, match=r"several formats at once \(gpt, qcow2\)") as caught:
        inspect_file(str(path), "qcow2", require_match=False)

    assert caught.value.inspection is not None
    assert caught.value.inspection.format == "gpt+qcow2"


# --- the declared disk_format must match the content ----------------------------------------


@requires_qemu_img
def test_a_raw_file_declared_qcow2_is_a_mismatch(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "claims.qcow2"
    path.write_bytes(pattern(MiB))

    with pytest.raises(FormatMismatch) as caught:
        inspect_file(str(path), "qcow2")

    assert str(caught.value) == (
        "The image data is raw, but the image's disk_format is qcow2. Set disk_format to match "
        "the data, or convert the data to qcow2."
    )
    assert caught.value.inspection == inspection.Inspection(
        "raw", MiB, safe=False, reason=str(caught.value)
    )


@requires_qemu_img
def test_a_qcow2_declared_raw_is_a_mismatch(tmp_path: pathlib.Path) -> None:
    path = make_image(tmp_path, "disk.qcow2", "qcow2")

    with pytest.raises(FormatMismatch, match="data is qcow2, but the image's disk_format is raw"):
        inspect_file(str(path), "raw")
    with pytest.raises(FormatMismatch):
        stream(path, 65536).finish("raw")


@requires_qemu_img
def test_without_require_match_a_mismatch_is_reported_not_refused(tmp_path: pathlib.Path) -> None:
    path = make_image(tmp_path, "disk.qcow2", "qcow2")

    found = inspect_file(str(path), "raw", require_match=False)

    assert (found.format, found.virtual_size, found.safe) == ("qcow2", MiB, True)
    assert found.reason is not None and "disk_format is raw" in found.reason


@requires_qemu_img
def test_a_container_is_not_compared_with_the_disk_format(tmp_path: pathlib.Path) -> None:
    ova = tmp_path / "appliance.ova"
    ova.write_bytes(pattern(100_000))

    assert inspect_file(str(ova), "vmdk", container_format="ova").format == "raw"
    with pytest.raises(FormatMismatch):
        inspect_file(str(ova), "vmdk", container_format="bare")


@pytest.mark.parametrize("declared", ["raw", "ami", "aki", "ari"])
def test_raw_like_formats_accept_raw_content_and_partitioned_disks(
    tmp_path: pathlib.Path, declared: str
) -> None:
    plain = tmp_path / "plain.img"
    plain.write_bytes(pattern(3 * MiB + 5))
    disk = tmp_path / "disk.img"
    disk.write_bytes(mbr_disk())

    assert inspect_file(str(plain), declared) == inspection.Inspection(
        "raw", 3 * MiB + 5, safe=True, reason=None
    )
    assert inspect_file(str(disk), declared) == inspection.Inspection(
        "gpt", 2 * MiB, safe=True, reason=None
    )


def test_a_partition_table_that_does_not_parse_is_refused_unless_told_otherwise(
    tmp_path: pathlib.Path,
) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(mbr_disk(partition=False))

    with pytest.raises(UnsafeImage, match=r"partition table \(MBR/GPT\) is invalid"):
        inspect_file(str(disk), "raw")
    assert inspect_file(str(disk), "raw", gpt_nonfatal_checks=["mbr"]).format == "gpt"
    # A kernel's boot sector carries the MBR signature with no partition table.
    assert inspect_file(str(disk), "aki").format == "gpt"


def test_an_iso_is_an_iso(tmp_path: pathlib.Path) -> None:
    iso = tmp_path / "cd.iso"
    iso.write_bytes(iso_bytes(blocks=40))

    assert inspect_file(str(iso), "iso") == inspection.Inspection(
        "iso", 40 * 2048, safe=True, reason=None
    )
    assert stream(iso, 333).finish("iso") == inspect_file(str(iso), "iso")
    with pytest.raises(FormatMismatch, match="data is iso, but the image's disk_format is raw"):
        inspect_file(str(iso), "raw")


def test_a_hybrid_iso_with_a_partition_table_counts_as_iso(tmp_path: pathlib.Path) -> None:
    iso = tmp_path / "hybrid.iso"
    iso.write_bytes(iso_bytes(blocks=40, with_mbr=True))

    assert inspect_file(str(iso), "iso").format == "iso"


def test_raw_content_is_not_an_iso(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cd.iso"
    path.write_bytes(pattern(64 * 1024))

    with pytest.raises(FormatMismatch, match="data is raw, but the image's disk_format is iso"):
        inspect_file(str(path), "iso")


@requires_qemu_img
def test_a_format_with_no_inspector_accepts_only_unrecognised_content(
    tmp_path: pathlib.Path,
) -> None:
    raw = tmp_path / "disk.ploop"
    raw.write_bytes(pattern(MiB))
    qcow2 = make_image(tmp_path, "disk.qcow2", "qcow2")

    assert inspect_file(str(raw), "ploop").format == "raw"
    with pytest.raises(FormatMismatch, match="data is qcow2, but the image's disk_format is ploop"):
        inspect_file(str(qcow2), "ploop")


def test_text_followed_by_binary_data_is_raw(tmp_path: pathlib.Path) -> None:
    # Looks like the start of a VMDK text descriptor, then is not ASCII: the VMDK parser
    # gives up half-way, which must read as "not a VMDK".
    path = tmp_path / "script.img"
    path.write_bytes(b"#!/bin/sh\n" * 60 + bytes(range(128, 256)) * 4)

    assert inspect_file(str(path), "raw") == inspection.Inspection("raw", 1112, True, None)


def test_without_a_declared_format_only_safety_is_checked(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(pattern(1000))

    assert inspect_file(str(path), None) == inspection.Inspection("raw", 1000, True, None)


# --- reading: bounded, and no more than needed ----------------------------------------------


def test_inspect_file_reads_only_the_head_of_a_large_raw_image(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.raw"
    with path.open("wb") as f:
        f.write(pattern(4096))
        f.truncate(512 * MiB)  # sparse
    fed: list[int] = []
    original = StreamInspector.feed

    def counting_feed(self: StreamInspector, chunk: bytes) -> None:
        fed.append(len(chunk))
        original(self, chunk)

    monkeypatch.setattr(StreamInspector, "feed", counting_feed)

    found = inspect_file(str(path), "raw")

    assert found == inspection.Inspection("raw", 512 * MiB, safe=True, reason=None)
    assert sum(fed) <= MiB


def test_the_stream_inspector_counts_every_byte_of_raw_data() -> None:
    inspector = StreamInspector()
    for _ in range(40):
        inspector.feed(pattern(65536 + 3))

    assert inspector.finish("raw") == inspection.Inspection("raw", 40 * 65539, True, None)
    assert inspector.bytes_fed == 40 * 65539


def test_an_empty_stream_is_raw_of_size_zero() -> None:
    assert StreamInspector().finish("raw") == inspection.Inspection("raw", 0, True, None)


def test_the_stream_inspector_is_single_use() -> None:
    inspector = StreamInspector()
    inspector.feed(b"x")
    inspector.finish("raw")

    with pytest.raises(RuntimeError):
        inspector.feed(b"y")
    with pytest.raises(RuntimeError):
        inspector.finish("raw")


@pytest.mark.parametrize(
    ("declared", "detected", "matches"),
    [
        (None, "qcow2", True),
        ("raw", "raw", True),
        ("raw", "gpt", True),
        ("raw", "qcow2", False),
        ("ami", "gpt", True),
        ("iso", "iso", True),
        ("iso", "raw", False),
        ("qcow2", "qcow2", True),
        ("vhd", "vhd", True),
        ("vhd", "raw", False),
        ("ploop", "raw", True),
        ("ploop", "vdi", False),
    ],
)
def test_format_matches(declared: str | None, detected: str, matches: bool) -> None:
    assert inspection.format_matches(declared, detected) is matches
