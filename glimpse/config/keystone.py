"""Options of the ``[keystone_authtoken]`` group: Keystone token validation.

The names are keystonemiddleware's (and keystoneauth1's, for the service's own
credentials), so the section of an operator's ``glance-api.conf`` carries over.
They matter only with ``[paste_deploy] flavor = keystone``.

The keystoneauth1 ``password`` plugin's options are declared here with help text
of their own; another ``auth_type`` gets its plugin's options registered when the
plugin is loaded (see :mod:`glimpse.http.keystone`).
"""

from __future__ import annotations

from oslo_config import cfg

GROUP = "keystone_authtoken"

_validation: list[cfg.Opt] = [
    cfg.StrOpt(
        "www_authenticate_uri",
        deprecated_opts=[cfg.DeprecatedOpt("auth_uri", group=GROUP)],
        help="Public Keystone endpoint that clients should authenticate against; sent in the "
        "WWW-Authenticate header of 401 responses. Defaults to auth_url without its version.",
    ),
    cfg.IntOpt(
        "token_cache_time",
        default=300,
        min=-1,
        help="Seconds a token Keystone has confirmed (or refused) is trusted without asking "
        "again, and never beyond the token's expiry. A revoked token is refused at the latest "
        "this long after its revocation. 0 or -1 validates every request with Keystone.",
    ),
    cfg.IntOpt(
        "token_cache_size",
        default=10000,
        min=0,
        help="Most tokens kept in the validation cache of each API process; the least "
        "recently used is forgotten first.",
    ),
    cfg.ListOpt(
        "service_token_roles",
        default=["service"],
        help="Roles of which a token in X-Service-Token must hold at least one to count as "
        "a service token.",
    ),
    cfg.BoolOpt(
        "service_token_roles_required",
        default=False,
        help="Refuse (401) a request whose X-Service-Token holds none of service_token_roles. "
        "When false such a token is accepted and a warning is logged.",
    ),
    cfg.ListOpt(
        "memcached_servers",
        help="Accepted for compatibility with keystonemiddleware and ignored: validated tokens "
        "are cached in the memory of each API process.",
    ),
    cfg.StrOpt(
        "region_name",
        help="Accepted for compatibility with keystonemiddleware; tokens are validated at "
        "auth_url, not at an endpoint looked up in the service catalog.",
    ),
    cfg.IntOpt(
        "http_connect_timeout",
        min=1,
        help="Seconds to wait for Keystone to answer before the request fails with 503. "
        "Unset waits as long as the operating system does.",
    ),
    cfg.BoolOpt(
        "insecure", default=False, help="Do not verify the certificate of an HTTPS Keystone."
    ),
    cfg.StrOpt("cafile", help="PEM file of the CA certificates that verify Keystone's HTTPS."),
    cfg.StrOpt("certfile", help="PEM client certificate presented to Keystone, if it asks."),
    cfg.StrOpt("keyfile", help="PEM private key of certfile."),
]

_service_credentials: list[cfg.Opt] = [
    cfg.StrOpt(
        "auth_type",
        deprecated_opts=[cfg.DeprecatedOpt("auth_plugin", group=GROUP)],
        help="keystoneauth1 plugin with which this service authenticates itself to Keystone "
        "to validate tokens, usually 'password'. Required with the keystone flavor.",
    ),
    cfg.StrOpt(
        "auth_section",
        help="Configuration section to read the auth plugin and its options from instead of "
        "this one.",
    ),
    cfg.StrOpt(
        "auth_url",
        help="Keystone identity endpoint, e.g. http://keystone:5000 (with or without /v3). "
        "Tokens are validated at <auth_url>/v3/auth/tokens.",
    ),
    cfg.StrOpt("username", help="Name of this service's user (password plugin)."),
    cfg.StrOpt("user_id", help="ID of this service's user, instead of username."),
    cfg.StrOpt("password", secret=True, help="Password of this service's user."),
    cfg.StrOpt("user_domain_name", help="Name of the domain of this service's user."),
    cfg.StrOpt("user_domain_id", help="ID of the domain of this service's user."),
    cfg.StrOpt("project_name", help="Project this service's token is scoped to, e.g. service."),
    cfg.StrOpt("project_id", help="ID of the project this service's token is scoped to."),
    cfg.StrOpt("project_domain_name", help="Name of the domain of project_name."),
    cfg.StrOpt("project_domain_id", help="ID of the domain of project_name."),
    cfg.StrOpt(
        "domain_name", help="Domain this service's token is scoped to, instead of a project."
    ),
    cfg.StrOpt("domain_id", help="ID of the domain this service's token is scoped to."),
    cfg.StrOpt("system_scope", help="'all' to scope this service's token to the system instead."),
    cfg.StrOpt("trust_id", help="Trust this service's token is scoped to, if any."),
    cfg.StrOpt(
        "default_domain_id",
        help="Domain ID used for both the user and the project when neither names its own.",
    ),
    cfg.StrOpt(
        "default_domain_name",
        help="Domain name used for both the user and the project when neither names its own.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [(GROUP, _validation + _service_credentials)]
