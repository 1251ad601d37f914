"""``no_op``: changes nothing; shows that the plugin machinery runs."""

from __future__ import annotations

import logging

from glimpse.imports.plugins.base import PluginInput, PluginOutput

LOG = logging.getLogger(__name__)


class NoOp:
    name = "no_op"
    reads_data = False

    def run(self, inp: PluginInput) -> PluginOutput:
        LOG.debug("no_op import plugin ran for %s", inp.image.get("id"))
        return PluginOutput(staged_path=inp.staged_path)
