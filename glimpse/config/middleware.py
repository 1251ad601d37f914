"""Options of the ``[oslo_middleware]`` group: running behind a proxy."""

from __future__ import annotations

from oslo_config import cfg

_opts: list[cfg.Opt] = [
    cfg.BoolOpt(
        "enable_proxy_headers_parsing",
        default=False,
        help="Take the scheme, host and path prefix clients use from the headers a "
        "TLS-terminating proxy sets (Forwarded, or X-Forwarded-Proto, X-Forwarded-Host and "
        "X-Forwarded-Prefix), for the URLs in Location headers and the versions document, and "
        "the client address from Forwarded or X-Forwarded-For for the access log. Enable it "
        "only behind a proxy that sets or removes these headers: clients can send them too.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("oslo_middleware", _opts)]
