"""Options of the ``[paste_deploy]`` group: which request pipeline runs."""

from __future__ import annotations

from oslo_config import cfg

_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "flavor",
        help="Authentication flavor. Unset: no authentication, identity taken from X-* headers "
        "or a 'user:project:roles' token. 'keystone': tokens validated by Keystone. "
        "'trusted-auth': X-* identity headers trusted as sent by a front proxy.",
    ),
    cfg.StrOpt(
        "config_file",
        help="Accepted for compatibility with glance-api.conf; Glimpse has no paste pipeline.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("paste_deploy", _opts)]
