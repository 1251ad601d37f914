"""What format image data really is, and whether it is safe to keep.

Uploaded and imported bytes are read by oslo.utils' format inspectors, which parse just
enough of each known format to name it, size it and run its safety checks. Nothing here
runs ``qemu-img``: this is the check that must pass *before* any tool that follows
references inside an image is allowed near it.

Refused (with a message the uploader can act on):

* a qcow2 image with a backing file or an external data file, or with feature bits the
  inspector does not know;
* a VMDK that is not self-contained: only ``monolithicSparse`` and ``streamOptimized``
  (narrowed further by ``vmdk_allowed_types``) with no extent paths are accepted, so a
  ``monolithicFlat`` or ``twoGbMaxExtent*`` descriptor pointing at other files is refused;
* QED, and anything else an inspector's safety check fails (a GPT/MBR partition table
  that does not parse, for instance);
* content that matches several formats at once (except an ISO with a GPT in front, which
  bootable ISOs legitimately have: it counts as ``iso``);
* with ``require_match``, content that is not the declared ``disk_format``
  (:class:`FormatMismatch`). The rules, by declared format:

  ==================  ==========================================================
  raw, ami            content the inspectors call ``raw`` or ``gpt`` (a disk
                      with a partition table is still a raw disk)
  aki, ari            as raw; a kernel's boot sector looks like an MBR, so a
                      partition table that does not parse is not fatal
  iso                 ``iso`` only
  qcow2, vmdk, vhd,   exactly that format
  vhdx, vdi, ...
  ploop and formats   ``raw`` only: there is no inspector to confirm them, but
  with no inspector   content that *is* some other known format is refused
  ==================  ==========================================================

  When the image's ``container_format`` is given and is not ``bare`` the data is a
  container (ova, docker, compressed, ...), so the disk format is not compared (as Glance
  does); safety checks still run on whatever the content turns out to be.

Errors::

    BadRequest                (glimpse.errors, 400)
    └── UnsafeImage           refused content; ``.inspection`` says what was found
        └── FormatMismatch    content is not the declared disk_format
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from oslo_utils.imageutils import format_inspector as fi

from glimpse.errors import BadRequest

#: VMDK create types Glance accepts by default (``[image_format] vmdk_allowed_types``).
DEFAULT_VMDK_ALLOWED_TYPES: tuple[str, ...] = ("streamOptimized", "monolithicSparse")

# The inspectors are given the stream in blocks of this size whatever the caller's chunks:
# the VMDK inspector reads a text descriptor (at most 1 MiB) from the first block only, and
# the inspectors' region capture copies the region so far for every block, which small
# blocks would make quadratic.
_BLOCK_SIZE = 1 << 20

_RAW_CONTENT = frozenset({"raw", "gpt"})
_RAW_LIKE_DECLARED = frozenset({"raw", "ami", "aki", "ari"})
_NOT_A_DISK = frozenset({"aki", "ari"})
# Formats whose inspector derives the virtual size from the stream length.
_SIZED_BY_LENGTH = frozenset({"raw", "gpt"})


@dataclass(frozen=True)
class Inspection:
    """The verdict on some image data.

    ``format`` is the content's format as the inspectors name it (``raw``, ``qcow2``,
    ``vmdk``, ``vhd``, ``vhdx``, ``vdi``, ``iso``, ``gpt``, ``luks``, ``qed``);
    ``virtual_size`` is the disk size in bytes it describes, ``None`` when unknown.
    Inspections that are returned are ``safe``; a refused one travels on the
    :class:`UnsafeImage` with ``safe=False`` and the ``reason``. A tolerated format
    mismatch (``require_match=False``) is returned safe, with the mismatch as ``reason``.
    """

    format: str
    virtual_size: int | None
    safe: bool
    reason: str | None


class Rules(TypedDict, total=False):
    """What an inspection refuses beyond unsafe content, as ``[image_format]`` sets it.

    ``container_format``: the image's; when given and not ``bare`` the disk format is not
    compared. ``vmdk_allowed_types``: VMDK create types accepted (default
    :data:`DEFAULT_VMDK_ALLOWED_TYPES`). ``gpt_nonfatal_checks``: GPT/MBR checks whose
    failure is tolerated (default none).
    """

    container_format: str | None
    vmdk_allowed_types: Collection[str]
    gpt_nonfatal_checks: Collection[str]


class UnsafeImage(BadRequest):
    """The image data is refused; the message tells the uploader why and what to do."""

    def __init__(self, message: str, inspection: Inspection | None = None) -> None:
        super().__init__(message)
        self.inspection = inspection


class FormatMismatch(UnsafeImage):
    """The data is not in the image's declared ``disk_format``."""


def format_matches(declared: str | None, detected: str) -> bool:
    """Whether content the inspectors call ``detected`` may be stored as ``declared``."""
    if not declared:
        return True
    if declared in _RAW_LIKE_DECLARED:
        return detected in _RAW_CONTENT
    if declared == "iso" or fi.get_inspector(declared) is not None:
        return detected == declared
    return detected == "raw"


class StreamInspector:
    """Inspect image data as it streams past, one block at a time.

    Memory stays bounded: data is handed to the inspectors a MiB at a time, and they keep
    only the regions they parse (the largest, a VMDK descriptor, is under 1 MiB). The
    verdict does not depend on how the stream is cut into chunks. Feed every chunk, then
    call :meth:`finish`.
    """

    def __init__(self) -> None:
        self._live: list[fi.FileInspector] = [cls() for cls in fi.ALL_FORMATS.values()]
        self._pending = bytearray()
        self._started = False
        self._finished = False
        self.bytes_fed = 0

    def feed(self, chunk: bytes) -> None:
        """Present the next block of the stream."""
        if self._finished:
            raise RuntimeError("StreamInspector.feed() after finish()")
        if not chunk:
            return
        self.bytes_fed += len(chunk)
        self._pending += chunk
        if len(self._pending) < _BLOCK_SIZE:
            return
        data = memoryview(bytes(self._pending))
        self._pending = bytearray()
        for start in range(0, len(data), _BLOCK_SIZE):
            self._eat(bytes(data[start : start + _BLOCK_SIZE]))

    @property
    def decided(self) -> bool:
        """Whether enough has been read to name the format without reading to the end."""
        return self._started and all(i.complete for i in self._live if i.NAME != "raw")

    def finish(
        self, declared_format: str | None, require_match: bool = True, **rules: Unpack[Rules]
    ) -> Inspection:
        """Conclude after the last block; see the module docstring for what is refused.

        :raises FormatMismatch: with ``require_match``, the content is not
            ``declared_format``.
        :raises UnsafeImage: the content is unsafe or cannot be inspected.
        """
        return self._conclude(declared_format, require_match, self.bytes_fed, **rules)

    def _eat(self, chunk: bytes) -> None:
        self._started = True
        for inspector in list(self._live):
            try:
                inspector.eat_chunk(chunk)
            except Exception:  # a parser giving up means "not this format"
                self._live.remove(inspector)
        if self.decided:
            # Complete inspectors that did not match never will: stop feeding them.
            self._live = [i for i in self._live if i.NAME == "raw" or _is_match(i)]

    def _conclude(
        self,
        declared: str | None,
        require_match: bool,
        length: int,
        *,
        container_format: str | None = None,
        vmdk_allowed_types: Collection[str] = DEFAULT_VMDK_ALLOWED_TYPES,
        gpt_nonfatal_checks: Collection[str] = (),
    ) -> Inspection:
        if self._finished:
            raise RuntimeError("StreamInspector.finish() called twice")
        if self._pending:
            self._eat(bytes(self._pending))
            self._pending = bytearray()
        self._finished = True
        for inspector in self._live:
            inspector.finish()

        detected = self._detected()
        name = str(detected)
        if name in _SIZED_BY_LENGTH:
            virtual_size: int | None = length
        else:
            virtual_size = _virtual_size(detected)

        def refuse(reason: str, error: type[UnsafeImage] = UnsafeImage) -> UnsafeImage:
            return error(reason, Inspection(name, virtual_size, False, reason))

        nonfatal = set(gpt_nonfatal_checks)
        if declared in _NOT_A_DISK:
            nonfatal.add("mbr")
        problem = _safety_problem(detected, nonfatal)
        if problem is None and name == "vmdk":
            problem = _vmdk_type_problem(detected, vmdk_allowed_types)
        if problem is not None:
            raise refuse(problem)

        compare = container_format in (None, "", "bare")
        if compare and not format_matches(declared, name):
            reason = (
                f"The image data is {name}, but the image's disk_format is {declared}. Set "
                f"disk_format to match the data, or convert the data to {declared}."
            )
            if require_match:
                raise refuse(reason, FormatMismatch)
            return Inspection(name, virtual_size, True, reason)
        return Inspection(name, virtual_size, True, None)

    def _detected(self) -> fi.FileInspector:
        matches = [i for i in self._live if i.NAME != "raw" and _is_match(i)]
        names = sorted(str(i) for i in matches)
        if names == ["gpt", "iso"]:
            # A bootable ISO carries an MBR/GPT in its system area.
            return next(i for i in matches if str(i) == "iso")
        if len(matches) > 1:
            reason = (
                f"The image data looks like several formats at once ({', '.join(names)}); "
                "an ambiguous image is refused. Convert it to a single format with qemu-img."
            )
            raise UnsafeImage(reason, Inspection("+".join(names), None, False, reason))
        if matches:
            return matches[0]
        return next(i for i in self._live if i.NAME == "raw")


def inspect_file(
    path: str, declared_format: str | None, *, require_match: bool = True, **rules: Unpack[Rules]
) -> Inspection:
    """Inspect a file, reading only as much of it as the inspectors need.

    Gives the same verdict as a :class:`StreamInspector` fed the whole file.

    :raises FormatMismatch: with ``require_match``, the content is not
        ``declared_format``.
    :raises UnsafeImage: the content is unsafe or cannot be inspected.
    """
    with open(path, "rb") as f:
        length = os.fstat(f.fileno()).st_size
        chunks = iter(lambda: f.read(_BLOCK_SIZE), b"")
        return inspect_stream(chunks, length, declared_format, require_match=require_match, **rules)


def inspect_stream(
    chunks: Iterable[bytes],
    length: int,
    declared_format: str | None,
    *,
    require_match: bool = True,
    **rules: Unpack[Rules],
) -> Inspection:
    """Inspect data of ``length`` bytes read as ``chunks`` (a store read, say), taking only
    as many chunks as the inspectors need; the caller closes the read.

    Gives the same verdict as :func:`inspect_file` on the same bytes.
    """
    inspector = StreamInspector()
    for chunk in chunks:
        inspector.feed(chunk)
        if inspector.decided and _known_without_the_rest(inspector):
            break
    return inspector._conclude(declared_format, require_match, length, **rules)


def _is_match(inspector: fi.FileInspector) -> bool:
    try:
        return bool(inspector.format_match)
    except Exception:  # e.g. a VMDK descriptor that is not ASCII leaves the parser half-set
        return False


def _known_without_the_rest(inspector: StreamInspector) -> bool:
    # A LUKS payload's size is the stream length minus its header: read to the end.
    return all(i.NAME != "luks" for i in inspector._live)


def _virtual_size(inspector: fi.FileInspector) -> int | None:
    try:
        size = int(inspector.virtual_size)
    except Exception:  # an inspector that cannot size a malformed header
        return None
    return size or None


_CHECK_MESSAGES = {
    ("qcow2", "backing_file"): (
        "The qcow2 image refers to a backing file; only self-contained images are accepted. "
        "Flatten it first, e.g. 'qemu-img convert -O qcow2 in.qcow2 out.qcow2'."
    ),
    ("qcow2", "data_file"): (
        "The qcow2 image keeps its data in an external data file; only self-contained images "
        "are accepted. Rewrite it first, e.g. 'qemu-img convert -O qcow2 in.qcow2 out.qcow2'."
    ),
    ("qcow2", "unknown_features"): (
        "The qcow2 image uses a version or feature flags that cannot be checked; rewrite it "
        "with 'qemu-img convert -O qcow2 -o compat=1.1'."
    ),
    ("vmdk", "footer"): "The VMDK footer does not agree with its header; the file is damaged.",
    ("qed", "banned"): "QED images are not accepted; convert the image to qcow2 or raw.",
}


def _safety_problem(inspector: fi.FileInspector, nonfatal: Collection[str]) -> str | None:
    name = str(inspector)
    try:
        inspector.safety_check()
    except fi.SafetyCheckFailed as exc:
        fatal = {k: v for k, v in exc.failures.items() if name != "gpt" or k not in nonfatal}
        if not fatal:
            return None
        return " ".join(_check_message(inspector, check, err) for check, err in fatal.items())
    except fi.ImageFormatError as exc:
        return (
            f"The image data could not be inspected as {name} ({exc}); it may be truncated "
            "or damaged."
        )
    except Exception as exc:
        return f"The image data could not be inspected as {name}: {exc}."
    return None


def _check_message(inspector: fi.FileInspector, check: str, error: Any) -> str:
    name = str(inspector)
    known = _CHECK_MESSAGES.get((name, check))
    if known:
        return known
    if name == "vmdk" and check == "descriptor":
        create_type = getattr(inspector, "vmdktype", None) or "unknown"
        return (
            f"The VMDK (createType {create_type}) is refused: {error}. Only self-contained "
            "monolithicSparse and streamOptimized VMDKs are accepted; convert it with "
            "'qemu-img convert -O vmdk -o subformat=streamOptimized'."
        )
    if name == "gpt":
        return f"The disk's partition table (MBR/GPT) is invalid: {error}."
    return f"The {name} image failed the safety check '{check}': {error}."


def _vmdk_type_problem(inspector: fi.FileInspector, allowed: Collection[str]) -> str | None:
    create_type = str(getattr(inspector, "vmdktype", "") or "")
    if create_type and create_type in {a.lower() for a in allowed}:
        return None
    shown = ", ".join(allowed) or "none"
    return (
        f"VMDK images of createType {create_type or 'unknown'} are not accepted here "
        f"(allowed: {shown})."
    )
