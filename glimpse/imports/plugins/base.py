"""The import plugin interface: one step that may rewrite the staged data or the image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from glimpse.errors import GlimpseError


@dataclass
class PluginInput:
    """What a plugin sees: the configuration, the image as it stands, the staged file.

    ``image`` carries at least ``disk_format``, ``container_format`` and ``properties``
    (a dict of the image's extra properties), updated with the changes of the plugins
    that ran before. ``roles`` are the roles of the user who asked for the import.
    ``staged_path`` is a file of this host holding the data; it is None only when no
    plugin of the chain reads the data (``reads_data``) and the staging area is an
    object store, so nothing was copied to the worker.
    """

    conf: Any
    image: dict[str, Any]
    staged_path: str | None
    roles: list[str] = field(default_factory=list)


@dataclass
class PluginOutput:
    """What a plugin did.

    ``staged_path`` is where the data now is (the input path when it was not rewritten;
    otherwise a new file, and the old one is gone). ``image_changes`` are base attributes
    to set (``disk_format``, ``container_format``, ``virtual_size``); ``property_changes``
    extra properties to set.
    """

    staged_path: str | None
    image_changes: dict[str, Any] = field(default_factory=dict)
    property_changes: dict[str, str] = field(default_factory=dict)


class ImportPlugin(Protocol):
    """One step of the import flow, run in ``[image_import_opts] image_import_plugins``
    order between staging and writing to the store."""

    name: str
    #: Whether the plugin reads or rewrites the data itself (then it gets a local file).
    reads_data: bool

    def run(self, inp: PluginInput) -> PluginOutput:
        """Do the step; raise :class:`PluginError` with a message the user can act on."""
        ...


class PluginError(GlimpseError):
    """A plugin could not do its step; the message is shown to the user in the task."""
