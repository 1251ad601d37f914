"""List options that read Glance's bracketed form as well as the plain one.

Glance declares some list options with ``bounds=True`` (``enabled_import_methods``,
the ``[import_filtering_opts]`` lists), so its configuration files write them as
``[glance-direct,web-download]``, items optionally quoted. A plain oslo.config
``ListOpt`` would read that as the items ``[glance-direct`` and ``web-download]``.
These options accept both spellings, so an operator's ``glance-api.conf`` carries
over and Glimpse's own plain ``glance-direct,web-download`` keeps working.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg, types


class OptionalBracketsList(types.List):
    """``a,b`` or ``[a,b]`` (and ``[]`` for an empty list); string items may be quoted."""

    def __init__(self, item_type: types.ConfigType | None = None) -> None:
        super().__init__(item_type=item_type or types.String(quotes=True), bounds=False)

    def __call__(self, value: Any) -> list[Any]:
        if isinstance(value, str):
            stripped = value.strip().rstrip(",")
            if stripped.startswith("[") and stripped.endswith("]"):
                value = stripped[1:-1]
        return super().__call__(value)


class GlanceListOpt(cfg.Opt):
    """A list option accepting Glance's bracketed spelling (see the module's docstring)."""

    def __init__(self, name: str, item_type: types.ConfigType | None = None, **kwargs: Any):
        super().__init__(name, type=OptionalBracketsList(item_type), **kwargs)
