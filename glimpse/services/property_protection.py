"""Property protections: who may create, read, update and delete which extra image properties.

Enabled by ``property_protection_file``, an INI file in Glance's format. Each section
name is a regular expression searched for in a property name (``re.search``, as
Glance does, so anchor it with ``^...$`` to match whole names); the first section
that matches, in file order, decides. Each section must give all four operations::

    [^x_billing_.*]
    create = admin
    read = admin,billing
    update = admin
    delete = !

With ``property_protection_rule_format = roles`` a value is a comma list of roles
(compared case-insensitively), ``@`` for everyone or ``!`` for nobody; an empty
value means nobody too. With ``policies`` a value is the name of one policy rule,
checked with an empty target (``@`` and ``!`` keep their meaning).

As in Glance, a property no section matches is denied for every operation (so a
file normally ends with a catch-all ``[.*]``), a file without any section protects
nothing, and administrators get no exemption: the file must grant them what they
may do. Only extra properties are covered, never the base attributes. A property
the caller may not read is left out of what it is shown and matches no list
filter; it is kept, untouched, when the caller changes other properties.
"""

from __future__ import annotations

import configparser
import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.policy import Policy

LOG = logging.getLogger(__name__)

OPERATIONS = ("create", "read", "update", "delete")
EVERYONE = "@"
NOBODY = "!"


class PropertyProtectionConfigError(ValueError):
    """The property protection file is missing or malformed; the service must not start."""


@dataclasses.dataclass(frozen=True)
class _Section:
    pattern: re.Pattern[str]
    #: For each operation: lower-cased roles (``roles``) or one rule name (``policies``).
    permissions: Mapping[str, tuple[str, ...]]


class PropertyProtection:
    """The rules of one property protection file (or none, allowing everything)."""

    def __init__(
        self, sections: list[_Section] | None, rule_format: str, policy: Policy | None
    ) -> None:
        self._sections = sections
        self._format = rule_format
        self._policy = policy

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts, policy: Policy) -> PropertyProtection:
        """Load ``property_protection_file``; raise :class:`PropertyProtectionConfigError`."""
        path = conf.property_protection_file
        if not path:
            return cls(None, "roles", None)
        rule_format = str(conf.property_protection_rule_format).lower()
        return cls(_load(_find(conf, path), rule_format), rule_format, policy)

    @property
    def enabled(self) -> bool:
        return self._sections is not None

    def allows(self, context: RequestContext, name: str, operation: str) -> bool:
        """Whether ``context`` may perform ``operation`` on the extra property ``name``."""
        if not self._sections:
            return True
        for section in self._sections:
            if section.pattern.search(name):
                break
        else:
            return False
        allowed = section.permissions[operation]
        if not allowed or NOBODY in allowed:
            return False
        if EVERYONE in allowed:
            return True
        if self._format == "policies":
            assert self._policy is not None
            return self._policy.check(context, allowed[0], {})
        roles = {role.lower() for role in context.roles}
        return not roles.isdisjoint(allowed)

    def require(self, context: RequestContext, name: str, operation: str) -> None:
        """Raise 403 (Glance's ReservedProperty) unless ``operation`` on ``name`` is allowed."""
        if not self.allows(context, name, operation):
            raise errors.ReservedAttribute(name)

    def readable(self, context: RequestContext, properties: Mapping[str, Any]) -> dict[str, Any]:
        """The extra properties ``context`` may read."""
        if not self._sections:
            return dict(properties)
        return {k: v for k, v in properties.items() if self.allows(context, k, "read")}


def _find(conf: cfg.ConfigOpts, path: str) -> str:
    """An absolute path, or one relative to the configuration folders (as Glance's find_file)."""
    found = path if os.path.isabs(path) else (conf.find_file(path) or path)
    if not os.path.isfile(found):
        raise PropertyProtectionConfigError(
            f"property_protection_file {path!r} does not exist or is not a file."
        )
    return found


def _load(path: str, rule_format: str) -> list[_Section]:
    if rule_format not in ("roles", "policies"):
        raise PropertyProtectionConfigError(
            f"Invalid property_protection_rule_format {rule_format!r}: use 'roles' or 'policies'."
        )
    # No interpolation: a regular expression may well contain '%'.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as stream:
            parser.read_file(stream)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise PropertyProtectionConfigError(
            f"Cannot read property protection file {path}: {exc}"
        ) from exc
    sections = []
    for expression in parser.sections():
        try:
            pattern = re.compile(expression)
        except re.error as exc:
            raise PropertyProtectionConfigError(
                f"Property protection file {path}: section [{expression}] is not a valid "
                f"regular expression: {exc}"
            ) from exc
        unknown = sorted(set(parser.options(expression)) - set(OPERATIONS))
        if unknown:
            LOG.warning(
                "Property protection file %s: section [%s] has unknown keys %s; only %s count",
                path,
                expression,
                ", ".join(unknown),
                ", ".join(OPERATIONS),
            )
        permissions = {
            operation: _permissions(path, expression, operation, parser, rule_format)
            for operation in OPERATIONS
        }
        sections.append(_Section(pattern, permissions))
    return sections


def _permissions(
    path: str,
    expression: str,
    operation: str,
    parser: configparser.ConfigParser,
    rule_format: str,
) -> tuple[str, ...]:
    where = f"Property protection file {path}, section [{expression}]"
    if not parser.has_option(expression, operation):
        raise PropertyProtectionConfigError(
            f"{where}: no '{operation}' rule (every section needs create, read, update and delete)."
        )
    value = parser.get(expression, operation).strip()
    if not value:
        LOG.warning(
            "%s: '%s' is empty, so nobody may %s these properties.", where, operation, operation
        )
        return ()
    if rule_format == "policies":
        if "," in value:
            raise PropertyProtectionConfigError(
                f"{where}: '{operation} = {value}' names several policies; name one rule "
                "and combine rules in the policy file."
            )
        return (value,)
    roles = tuple(role.strip().lower() for role in value.split(",") if role.strip())
    if EVERYONE in roles and NOBODY in roles:
        raise PropertyProtectionConfigError(
            f"{where}: '{operation} = {value}' mixes '@' (everyone) and '!' (nobody)."
        )
    return roles
