"""Options of the ``[image_format]`` group."""

from __future__ import annotations

from oslo_config import cfg

_opts = [
    cfg.ListOpt(
        "container_formats",
        default=["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"],
        help="Container formats an image may declare.",
    ),
    cfg.ListOpt(
        "disk_formats",
        default=["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"],
        help="Disk formats an image may declare.",
    ),
    cfg.BoolOpt(
        "require_image_format_match",
        default=True,
        help="Refuse uploaded or imported data whose detected format differs from the image's "
        "disk_format.",
    ),
    cfg.ListOpt(
        "vmdk_allowed_types",
        default=["streamOptimized", "monolithicSparse"],
        help="VMDK create types accepted; others (such as monolithicFlat, whose extents name "
        "other files) are refused.",
    ),
    cfg.ListOpt(
        "gpt_safety_checks_nonfatal",
        default=[],
        help="Names of GPT/MBR partition table checks whose failure is only logged instead of "
        "refusing the image.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("image_format", _opts)]
