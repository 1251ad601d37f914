"""``image_conversion``: store every imported image in ``[image_conversion] output_format``.

Steps, as in Glance, each of which can refuse the import:

1. inspect the staged file with :func:`glimpse.imports.inspection.inspect_file`, always
   requiring it to be its declared ``disk_format`` (qemu-img is told that format, so a
   mismatch would make it read the data as something else);
2. ``qemu-img info --output=json -f <format>`` to record ``virtual_size`` and to check
   again, with qemu's own parser, for backing files, external data files and VMDK create
   types;
3. if the image is already in the output format, stop; else ``qemu-img convert`` into
   ``<staged>.<output_format>``, inspect the result, remove the original and report
   ``disk_format=<output_format>``, ``container_format=bare``.

Images that are not disks to convert pass through untouched (with their virtual size):
``iso``, and the kernel/ramdisk/machine formats ``aki``, ``ari`` and ``ami``. Formats with
no inspector (``ploop``) and containers other than ``bare`` are refused, because their
content cannot be checked before qemu-img reads it.

qemu-img runs under CPU-time and address-space limits (``[image_conversion]
qemu_img_*``). They are applied by a tiny Python launcher that sets them and ``exec``s
qemu-img, not by ``preexec_fn``: the worker runs plugins in threads, and ``preexec_fn``
is not safe to use when a process has threads.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Collection, Sequence
from typing import Any

from oslo_utils.imageutils import format_inspector

from glimpse.imports import inspection
from glimpse.imports.plugins.base import PluginError, PluginInput, PluginOutput

LOG = logging.getLogger(__name__)

# Where Glance's disk_format names and qemu-img's format names differ.
_QEMU_FORMAT = {"vhd": "vpc", "gpt": "raw"}
_PASS_THROUGH = frozenset({"iso", "aki", "ari", "ami"})

_LAUNCHER = (
    "import os, resource, sys\n"
    "cpu, mem = int(sys.argv[1]), int(sys.argv[2])\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))\n"
    "resource.setrlimit(resource.RLIMIT_AS, (mem, mem))\n"
    "try:\n"
    "    os.execvp(sys.argv[3], sys.argv[3:])\n"
    "except FileNotFoundError:\n"
    "    sys.exit(127)\n"
)
_NOT_FOUND = 127


class ImageConversion:
    name = "image_conversion"
    reads_data = True

    def run(self, inp: PluginInput) -> PluginOutput:
        opts = inp.conf.image_conversion
        target = str(opts.output_format)
        source = str(inp.image.get("disk_format") or "")
        container = inp.image.get("container_format")
        path = inp.staged_path
        if path is None:
            raise PluginError("The staged data was not copied to the worker to be converted.")
        vmdk_allowed = _vmdk_allowed_types(inp.conf)
        gpt_nonfatal = _gpt_nonfatal_checks(inp.conf)

        if not source:
            raise PluginError("The image has no disk_format, so it cannot be converted.")
        if source not in _PASS_THROUGH:
            if container not in (None, "", "bare"):
                raise PluginError(
                    f"Images with container_format {container} cannot be converted: the data "
                    "is a container, not a disk. Import the disk itself with container_format "
                    "bare."
                )
            if format_inspector.get_inspector(source) is None:
                raise PluginError(
                    f"Images with disk_format {source} cannot be converted: their content "
                    "cannot be checked before qemu-img reads it."
                )
        try:
            found = inspection.inspect_file(
                path,
                source,
                require_match=True,
                container_format=container,
                vmdk_allowed_types=vmdk_allowed,
                gpt_nonfatal_checks=gpt_nonfatal,
            )
        except inspection.UnsafeImage as exc:
            raise PluginError(str(exc)) from exc
        if source in _PASS_THROUGH:
            LOG.debug("Not converting %s image %s", source, inp.image.get("id"))
            return _unchanged(path, found.virtual_size)

        qemu_source = _QEMU_FORMAT.get(source, source)
        info = _qemu_img_info(path, qemu_source, opts)
        _check_info(info, qemu_source, vmdk_allowed)
        virtual_size = info.get("virtual-size")
        if not isinstance(virtual_size, int):
            virtual_size = found.virtual_size
        if source == target or qemu_source == target:
            return _unchanged(path, virtual_size)

        dest = f"{path}.{target}"
        try:
            _run_qemu_img(
                [
                    "convert",
                    "-f",
                    qemu_source,
                    "-O",
                    target,
                    *_output_options(target, vmdk_allowed),
                    path,
                    dest,
                ],
                cpu_seconds=int(opts.qemu_img_convert_cpu_seconds),
                memory_bytes=int(opts.qemu_img_convert_memory_bytes),
                timeout=int(opts.qemu_img_convert_timeout),
                what="Converting the image",
            )
            inspection.inspect_file(
                dest,
                target,
                vmdk_allowed_types=vmdk_allowed,
                gpt_nonfatal_checks=gpt_nonfatal,
            )
        except inspection.UnsafeImage as exc:
            _remove(dest)
            raise PluginError(f"The converted image failed inspection: {exc}") from exc
        except BaseException:
            _remove(dest)
            raise
        os.remove(path)
        LOG.info("Converted image %s from %s to %s", inp.image.get("id"), source, target)
        changes: dict[str, Any] = {"disk_format": target, "container_format": "bare"}
        if virtual_size is not None:
            changes["virtual_size"] = virtual_size
        return PluginOutput(staged_path=dest, image_changes=changes)


def _output_options(target: str, vmdk_allowed: Collection[str]) -> list[str]:
    """qemu-img writes monolithicSparse VMDKs by default; honour a narrower allow list."""
    allowed = {a.lower() for a in vmdk_allowed}
    if target == "vmdk" and "monolithicsparse" not in allowed and "streamoptimized" in allowed:
        return ["-o", "subformat=streamOptimized"]
    return []


def _unchanged(path: str, virtual_size: int | None) -> PluginOutput:
    changes: dict[str, Any] = {}
    if virtual_size is not None:
        changes["virtual_size"] = virtual_size
    return PluginOutput(staged_path=path, image_changes=changes)


def _qemu_img_info(path: str, qemu_format: str, opts: Any) -> dict[str, Any]:
    out = _run_qemu_img(
        ["info", "--output=json", "-f", qemu_format, path],
        cpu_seconds=int(opts.qemu_img_info_cpu_seconds),
        memory_bytes=int(opts.qemu_img_info_memory_bytes),
        timeout=int(opts.qemu_img_info_timeout),
        what="Reading the image with qemu-img info",
    )
    try:
        info = json.loads(out)
    except ValueError as exc:
        raise PluginError("qemu-img info gave output that is not JSON.") from exc
    if not isinstance(info, dict):
        raise PluginError("qemu-img info gave unexpected output.")
    return info


def _check_info(info: dict[str, Any], qemu_format: str, vmdk_allowed: Collection[str]) -> None:
    """qemu's own view must agree with the inspector's (defence in depth)."""
    if info.get("format") != qemu_format:
        raise PluginError(
            f"qemu-img reads the image as {info.get('format', 'unknown')}, not {qemu_format}."
        )
    if "backing-filename" in info or "full-backing-filename" in info:
        raise PluginError("Images with a backing file are not accepted.")
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file") is not None:
        raise PluginError("qcow2 images with an external data file are not accepted.")
    if qemu_format == "vmdk":
        create_type = data.get("create-type")
        if not create_type or create_type.lower() not in {a.lower() for a in vmdk_allowed}:
            raise PluginError(
                f"VMDK images of createType {create_type or 'unknown'} are not accepted "
                f"(allowed: {', '.join(vmdk_allowed) or 'none'})."
            )


def _run_qemu_img(
    args: Sequence[str], *, cpu_seconds: int, memory_bytes: int, timeout: int, what: str
) -> str:
    command = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _LAUNCHER,
        str(cpu_seconds),
        str(memory_bytes),
        "qemu-img",
        *args,
    ]
    try:
        proc = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
    except subprocess.TimeoutExpired as exc:
        raise PluginError(f"{what} took longer than {timeout} seconds.") from exc
    if proc.returncode == 0:
        return proc.stdout
    stderr = proc.stderr.strip()
    if proc.returncode == _NOT_FOUND:
        raise PluginError("qemu-img is not installed on this host (package qemu-utils).")
    if proc.returncode < 0:
        raise PluginError(
            f"{what} was stopped by its resource limits (signal {-proc.returncode}); "
            "the image may be crafted to exhaust them."
        )
    last_line = stderr.splitlines()[-1] if stderr else f"exit status {proc.returncode}"
    raise PluginError(f"{what} failed: {last_line}")


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _vmdk_allowed_types(conf: Any) -> tuple[str, ...]:
    # ``[image_format] vmdk_allowed_types`` is Glance's option; use it when declared.
    value = getattr(getattr(conf, "image_format", None), "vmdk_allowed_types", None)
    if value is None:
        return inspection.DEFAULT_VMDK_ALLOWED_TYPES
    return tuple(value)


def _gpt_nonfatal_checks(conf: Any) -> tuple[str, ...]:
    value = getattr(getattr(conf, "image_format", None), "gpt_safety_checks_nonfatal", None)
    return tuple(value or ())
