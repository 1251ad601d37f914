"""``inject_image_metadata``: add the operator's ``[inject_metadata_properties] inject``
properties to every imported image, unless the importing user has one of the
``ignore_user_roles``."""

from __future__ import annotations

import logging

from glimpse.imports.plugins.base import PluginInput, PluginOutput

LOG = logging.getLogger(__name__)
_RESERVED_PREFIX = "os_glance"


class InjectImageMetadata:
    name = "inject_image_metadata"
    reads_data = False

    def run(self, inp: PluginInput) -> PluginOutput:
        opts = inp.conf.inject_metadata_properties
        # Keystone role names are case-insensitive in policy checks; match them the same way.
        ignored = {role.lower() for role in opts.ignore_user_roles}
        if any(role.lower() in ignored for role in inp.roles):
            return PluginOutput(staged_path=inp.staged_path)
        changes: dict[str, str] = {}
        for key, value in dict(opts.inject).items():
            if key.startswith(_RESERVED_PREFIX):
                # The os_glance* namespace belongs to the service, as in Glance.
                LOG.warning("Not injecting reserved property %s into %s", key, inp.image.get("id"))
                continue
            changes[key] = str(value)
        return PluginOutput(staged_path=inp.staged_path, property_changes=changes)
