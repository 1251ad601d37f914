"""Options of the ``[oslo_policy]`` group that Glimpse adds to oslo.policy's own.

oslo.policy declares ``policy_file``, ``enforce_new_defaults`` and the rest. Two
things differ from a bare oslo.policy here:

* ``enforce_new_defaults`` defaults to false, so that Rocky's rules stay in force
  until an operator opts into the newer project-scoped defaults;
* ``enforce_scope`` is Glance's option, which current oslo.policy no longer has
  (it always checks scope types): Glimpse gives its rules scope types only when
  the option is true.
"""

from __future__ import annotations

from oslo_config import cfg
from oslo_policy import opts as policy_opts

GROUP = "oslo_policy"

_opts: list[cfg.Opt] = [
    cfg.BoolOpt(
        "enforce_scope",
        default=False,
        help="Refuse (403) requests whose token scope is not among a rule's scope types: with "
        "the new defaults every image and metadef rule is project-scoped, so system- and "
        "domain-scoped tokens are refused. When false the token's scope is not checked.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [(GROUP, _opts)]


def set_defaults(conf: cfg.ConfigOpts | None = None) -> None:
    """Make Rocky's rules the default (oslo.policy itself defaults to the new ones).

    Registers oslo.policy's options on ``conf``, so they can be read and overridden
    before the enforcer exists. Also the ``oslo.config.opts.defaults`` hook of the
    ``glimpse`` namespace, so the generated sample shows the default Glimpse uses.
    """
    policy_opts.set_defaults(conf or cfg.ConfigOpts(), enforce_new_defaults=False)
