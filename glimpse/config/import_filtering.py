"""Options of the ``[import_filtering_opts]`` group: which URIs web-download may fetch.

The same filter applies to http(s) image locations: those added by JSON patch or
the locations API, and every read of the http store (redirects included).

The six list options and their precedence are Glance's: at each level (scheme,
host, port) a non-empty allow list wins and the deny list beside it is ignored.
They read Glance's bracketed spelling (``allowed_ports = [80,443]``) as well as
the plain one.
The rest are Glimpse's own guards against server-side request forgery and
stalled sources; see :mod:`glimpse.imports.web_download`.
"""

from __future__ import annotations

from oslo_config import cfg, types

from glimpse.config.lists import GlanceListOpt

_PRECEDENCE = " When both allowed_{0} and disallowed_{0} are set, only allowed_{0} is obeyed."

_port = types.Integer(min=1, max=65535)

_opts = [
    GlanceListOpt(
        "allowed_schemes",
        default=["http", "https"],
        help="URI schemes web-download may use. An empty list allows every scheme not in "
        "disallowed_schemes; Glimpse itself can only fetch http and https."
        + _PRECEDENCE.format("schemes"),
    ),
    GlanceListOpt(
        "disallowed_schemes",
        default=[],
        help="URI schemes web-download must not use; consulted only when allowed_schemes is empty.",
    ),
    GlanceListOpt(
        "allowed_hosts",
        default=[],
        help="Host names or IP addresses web-download may fetch from; empty allows every host "
        "not in disallowed_hosts. A host listed here may also resolve to loopback, private or "
        "link-local addresses (see allow_private_addresses). IP addresses match in any "
        "spelling (127.0.0.1 also matches 2130706433 and [::ffff:127.0.0.1])."
        + _PRECEDENCE.format("hosts"),
    ),
    GlanceListOpt(
        "disallowed_hosts",
        default=[],
        help="Host names or IP addresses web-download must not fetch from; consulted only when "
        "allowed_hosts is empty. An IP address listed here also refuses every host name "
        "that resolves to it.",
    ),
    GlanceListOpt(
        "allowed_ports",
        item_type=_port,
        default=[80, 443],
        help="Ports web-download may connect to. As in Glance, ports are checked only when the "
        "URI names one: a URI without a port uses its scheme's default port (80 for http, "
        "443 for https) whatever these lists say." + _PRECEDENCE.format("ports"),
    ),
    GlanceListOpt(
        "disallowed_ports",
        item_type=_port,
        default=[],
        help="Ports web-download must not connect to; consulted only when allowed_ports is empty.",
    ),
    cfg.BoolOpt(
        "allow_private_addresses",
        default=False,
        help="Let web-download connect to addresses that are not publicly routable: loopback, "
        "link-local (including the 169.254.169.254 metadata service), private (RFC 1918, "
        "IPv6 unique local), shared, unspecified, multicast, documentation and reserved "
        "ranges. When False, such addresses are refused unless the URI's host is listed in "
        "allowed_hosts. Every address a host name resolves to is checked, before each "
        "connection and after each redirect. These options also decide which http(s) image "
        "locations may be added and which the http store reads: http locations on a "
        "private network need their hosts in allowed_hosts, or this option.",
    ),
    cfg.FloatOpt(
        "connect_timeout",
        default=30.0,
        min=0.001,
        help="Seconds web-download waits to resolve a host name and to establish a connection "
        "(including the TLS handshake) before giving up.",
    ),
    cfg.FloatOpt(
        "idle_timeout",
        default=60.0,
        min=0.001,
        help="Seconds web-download waits for the next byte from the source (response headers "
        "or body) before giving up on a stalled download.",
    ),
    cfg.IntOpt(
        "max_redirects",
        default=5,
        min=0,
        help="Redirects web-download follows for one URI; every hop is checked against these "
        "options again. 0 refuses any redirect.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [("import_filtering_opts", _opts)]
