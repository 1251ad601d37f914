"""Import plugins: the optional steps between staging and the store.

Configured by ``[image_import_opts] image_import_plugins`` and run in that order, each
on the output of the one before:

* ``no_op`` (:mod:`.no_op`): nothing;
* ``inject_image_metadata`` (:mod:`.inject_image_metadata`): operator-defined properties;
* ``image_conversion`` (:mod:`.image_conversion`): inspect, then convert with qemu-img.
"""

from __future__ import annotations

from typing import Any

from glimpse.imports.plugins.base import ImportPlugin, PluginError, PluginInput, PluginOutput
from glimpse.imports.plugins.image_conversion import ImageConversion
from glimpse.imports.plugins.inject_image_metadata import InjectImageMetadata
from glimpse.imports.plugins.no_op import NoOp

__all__ = [
    "PLUGINS",
    "ImageConversion",
    "ImportPlugin",
    "InjectImageMetadata",
    "NoOp",
    "PluginError",
    "PluginInput",
    "PluginOutput",
    "load_plugins",
]

#: Every plugin by its configuration name.
PLUGINS: dict[str, type[ImportPlugin]] = {
    NoOp.name: NoOp,
    InjectImageMetadata.name: InjectImageMetadata,
    ImageConversion.name: ImageConversion,
}


def load_plugins(conf: Any) -> list[ImportPlugin]:
    """The plugins ``[image_import_opts] image_import_plugins`` names, in its order.

    :raises ValueError: a name is not a known plugin.
    """
    loaded: list[ImportPlugin] = []
    for name in conf.image_import_opts.image_import_plugins:
        plugin = PLUGINS.get(name)
        if plugin is None:
            raise ValueError(
                f"Unknown import plugin {name!r} in [image_import_opts] image_import_plugins; "
                f"known plugins: {', '.join(sorted(PLUGINS))}."
            )
        loaded.append(plugin())
    return loaded
