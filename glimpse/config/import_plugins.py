"""Options of the import plugins: ``[image_import_opts]``, ``[image_conversion]`` and
``[inject_metadata_properties]``.

Names and help text follow Glance's (``glance-image-import.conf``); the ``qemu_img_*``
limits are Glimpse's own, because Glance ran ``qemu-img convert`` with no limits at all.
"""

from __future__ import annotations

from oslo_config import cfg, types

_GIB = 1 << 30

_image_import_opts: list[cfg.Opt] = [
    cfg.ListOpt(
        "image_import_plugins",
        item_type=types.String(quotes=True),
        bounds=True,
        default=[],
        sample_default="[no_op]",
        help="""
Image import plugins to be enabled for task processing.

Provide list of strings reflecting to the task objects that should be included in the
image import flow, run in the order given. By default no plugins are enabled.

The allowed values for this option is comma separated list of object names in between
``[`` and ``]``.

Possible values:
    * no_op (only logs debug level message that the plugin has been executed)
    * inject_image_metadata (see [inject_metadata_properties])
    * image_conversion (see [image_conversion])
""",
    ),
]

_image_conversion_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "output_format",
        default="raw",
        choices=("qcow2", "raw", "vmdk"),
        help="""
Desired output format for image conversion plugin.

Provide a valid image format to which the conversion plugin will convert the image
before storing it to the back-end.

Note, if the Image Conversion plugin for image import is defined, users should only
upload disk formats that are supported by `qemu-img` otherwise the conversion and
import will fail.

Possible values:
    * qcow2
    * raw
    * vmdk

Related Options:
    * disk_formats
""",
    ),
    cfg.IntOpt(
        "qemu_img_info_cpu_seconds",
        default=8,
        min=1,
        help="CPU seconds `qemu-img info` may use on an imported image before it is killed. "
        "It normally needs milliseconds; the limit stops a crafted image from keeping a worker "
        "busy (Glance used 2).",
    ),
    cfg.IntOpt(
        "qemu_img_info_memory_bytes",
        default=_GIB,
        min=64 << 20,
        help="Address space, in bytes, `qemu-img info` may map (Glance used 1 GiB).",
    ),
    cfg.IntOpt(
        "qemu_img_info_timeout",
        default=60,
        min=1,
        help="Wall-clock seconds `qemu-img info` may run before it is killed.",
    ),
    cfg.IntOpt(
        "qemu_img_convert_cpu_seconds",
        default=3600,
        min=1,
        help="CPU seconds `qemu-img convert` may use converting one imported image.",
    ),
    cfg.IntOpt(
        "qemu_img_convert_memory_bytes",
        default=_GIB,
        min=64 << 20,
        help="Address space, in bytes, `qemu-img convert` may map.",
    ),
    cfg.IntOpt(
        "qemu_img_convert_timeout",
        default=7200,
        min=1,
        help="Wall-clock seconds `qemu-img convert` may run before it is killed and the "
        "import fails.",
    ),
]

_inject_metadata_opts: list[cfg.Opt] = [
    cfg.ListOpt(
        "ignore_user_roles",
        default=["admin"],
        help="""
Specify name of user roles to be ignored for injecting metadata properties in the image.

Possible values:
    * List containing user roles. For example: [admin,member]
""",
    ),
    cfg.DictOpt(
        "inject",
        default={},
        help="""
Dictionary contains metadata properties to be injected in image.

Possible values:
    * Dictionary containing key/value pairs. Key characters length should be <= 255.
      For example: k1:v1,k2:v2
""",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [
    ("image_import_opts", _image_import_opts),
    ("image_conversion", _image_conversion_opts),
    ("inject_metadata_properties", _inject_metadata_opts),
]
