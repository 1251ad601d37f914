"""Authorisation through oslo.policy, with Glance's rule names and two sets of defaults.

* Rocky's shipped ``policy.json`` (the default): almost everything open to any
  authenticated caller, ownership enforced by the service layer.
* Glance 2023.1's project-scoped defaults, with the ``admin``, ``member`` and
  ``reader`` personas, chosen by ``[oslo_policy] enforce_new_defaults = true``.

Each rule is registered once, with its new default and Rocky's as the
:class:`~oslo_policy.policy.DeprecatedRule`; oslo.policy then enforces the new
default alone, or "new or Rocky" (which is Rocky's wherever Rocky's is the looser,
as it always is here). ``[oslo_policy] enforce_scope`` adds the rules' scope
types. An operator's policy file (``policy_file``, YAML or JSON) overrides any
rule. The service layer calls :meth:`Policy.enforce` explicitly; nothing is
wrapped or proxied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from glimpse import errors
from glimpse.context import RequestContext

_ANYONE = ""
_ADMIN = "role:admin"

# Rocky's etc/policy.json, the file deployments actually ran with (and the rules Glance
# added later, with the defaults it introduced them with).
_ROCKY_DEFAULTS: dict[str, tuple[str, str]] = {
    "context_is_admin": (_ADMIN, "Who is an administrator."),
    "default": (_ADMIN, "Rule for anything without a rule of its own."),
    "add_image": (_ANYONE, "Create an image."),
    "delete_image": (_ANYONE, "Delete an image."),
    "get_image": (_ANYONE, "Show an image."),
    "get_images": (_ANYONE, "List images."),
    "modify_image": (_ANYONE, "Update an image."),
    "publicize_image": (_ADMIN, "Make an image public."),
    "communitize_image": (_ANYONE, "Make an image community."),
    "copy_from": (_ANYONE, "Unused; kept so that Glance policy files load unchanged."),
    "download_image": (_ANYONE, "Download image data."),
    "upload_image": (_ANYONE, "Upload image data."),
    "delete_image_location": (_ANYONE, "Remove an image location."),
    "get_image_location": (_ANYONE, "See image locations."),
    "set_image_location": (_ANYONE, "Add or replace image locations."),
    "add_member": (_ANYONE, "Share an image with a project."),
    "delete_member": (_ANYONE, "Stop sharing an image with a project."),
    "get_member": (_ANYONE, "Show an image member."),
    "get_members": (_ANYONE, "List image members."),
    "modify_member": (_ANYONE, "Accept or reject a shared image."),
    "manage_image_cache": (_ADMIN, "Manage the image cache."),
    "get_task": (_ANYONE, "Show a task."),
    "get_tasks": (_ANYONE, "List tasks."),
    "add_task": (_ANYONE, "Create a task."),
    "modify_task": (_ANYONE, "Change a task."),
    "tasks_api_access": (_ADMIN, "Use the /v2/tasks endpoints."),
    "deactivate": (_ANYONE, "Deactivate an image."),
    "reactivate": (_ANYONE, "Reactivate an image."),
    "get_metadef_namespace": (_ANYONE, "Show a metadata definition namespace."),
    "get_metadef_namespaces": (_ANYONE, "List metadata definition namespaces."),
    "modify_metadef_namespace": (_ANYONE, "Update a metadata definition namespace."),
    "add_metadef_namespace": (_ANYONE, "Create a metadata definition namespace."),
    "delete_metadef_namespace": (_ANYONE, "Delete a metadata definition namespace."),
    "get_metadef_object": (_ANYONE, "Show a metadata definition object."),
    "get_metadef_objects": (_ANYONE, "List metadata definition objects."),
    "modify_metadef_object": (_ANYONE, "Update a metadata definition object."),
    "add_metadef_object": (_ANYONE, "Create a metadata definition object."),
    "delete_metadef_object": (_ANYONE, "Delete a metadata definition object."),
    "list_metadef_resource_types": (_ANYONE, "List metadata definition resource types."),
    "get_metadef_resource_type": (_ANYONE, "Show resource type associations."),
    "add_metadef_resource_type_association": (_ANYONE, "Associate a resource type."),
    "remove_metadef_resource_type_association": (_ANYONE, "Remove a resource type association."),
    "get_metadef_property": (_ANYONE, "Show a metadata definition property."),
    "get_metadef_properties": (_ANYONE, "List metadata definition properties."),
    "modify_metadef_property": (_ANYONE, "Update a metadata definition property."),
    "add_metadef_property": (_ANYONE, "Create a metadata definition property."),
    "remove_metadef_property": (_ANYONE, "Delete a metadata definition property."),
    "get_metadef_tag": (_ANYONE, "Show a metadata definition tag."),
    "get_metadef_tags": (_ANYONE, "List metadata definition tags."),
    "modify_metadef_tag": (_ANYONE, "Update a metadata definition tag."),
    "add_metadef_tag": (_ANYONE, "Create a metadata definition tag."),
    "add_metadef_tags": (_ANYONE, "Create metadata definition tags in bulk."),
    "delete_metadef_tag": (_ANYONE, "Delete a metadata definition tag."),
    "delete_metadef_tags": (_ANYONE, "Delete all tags of a namespace."),
    # Later than Rocky, with the defaults Glance introduced them with.
    "copy_image": (
        _ADMIN,
        "Copy an image the caller does not own to more stores (the copy-image import "
        "method, Victoria); owners copy their own images under modify_image.",
    ),
    "stores_info_detail": (
        _ADMIN,
        "Show each store's type, weight and properties (GET /v2/info/stores/detail, Yoga).",
    ),
    # Images API 2.17 (2024.2), the answer to OSSN-0065 and OSSN-0090: a service (Nova,
    # Cinder) registers the locations it wrote, and only a service reads them back. Glance
    # gives both the same default with either set of defaults; a caller without the
    # service role may add only http(s) locations, and only to images of its project.
    "add_image_location": (
        "rule:service_api or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
        "Add a location to a queued image (POST /v2/images/{image_id}/locations, 2.17).",
    ),
    "fetch_image_location": (
        "rule:service_api",
        "List an image's locations (GET /v2/images/{image_id}/locations, 2.17).",
    ),
}


# Glance 2023.1's defaults (glance/policies/), where they differ from Rocky's. An admin
# is an admin in any project, as in Glance; "member" and "reader" are project personas
# (Keystone's implied roles put "reader" in every member's token). "default" stays
# admin-only: Glance's later "" would only open rules nobody registered, and the task
# rules it stood behind are written out as "" here.
_CONTEXT_ADMIN = "rule:context_is_admin"
_PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
_PROJECT_READER = "role:reader and project_id:%(project_id)s"
_IMAGE_MEMBER = "project_id:%(member_id)s"
# Glance quotes these literals with double quotes, which oslopolicy-policy-generator
# writes into its YAML unescaped; single quotes mean the same to oslo.policy.
_SHARED_WITH_ANYONE = (
    "'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s"
)
_ADMIN_OR_MEMBER = f"{_CONTEXT_ADMIN} or ({_PROJECT_MEMBER})"
_ADMIN_OR_READER = f"{_CONTEXT_ADMIN} or ({_PROJECT_READER})"
_GET_IMAGE = (
    f"{_CONTEXT_ADMIN} or (role:reader and "
    f"(project_id:%(project_id)s or {_IMAGE_MEMBER} or {_SHARED_WITH_ANYONE}))"
)
_DOWNLOAD_IMAGE = (
    f"{_CONTEXT_ADMIN} or (role:member and "
    f"(project_id:%(project_id)s or {_IMAGE_MEMBER} or {_SHARED_WITH_ANYONE}))"
)
_CREATE_IMAGE = f"{_CONTEXT_ADMIN} or ({_PROJECT_MEMBER} and project_id:%(owner)s)"
_SHARED_MEMBER = f"{_CONTEXT_ADMIN} or (role:member and {_IMAGE_MEMBER})"
_READER_OR_SHARED_MEMBER = (
    f"{_CONTEXT_ADMIN} or (role:reader and (project_id:%(project_id)s or {_IMAGE_MEMBER}))"
)
_GET_NAMESPACE = (
    f"{_CONTEXT_ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))"
)
_METADEF_ADMIN = "rule:metadef_admin"

_NEW_DEFAULTS: dict[str, str] = {
    "add_image": _CREATE_IMAGE,
    "delete_image": _ADMIN_OR_MEMBER,
    "get_image": _GET_IMAGE,
    "get_images": _ADMIN_OR_READER,
    "modify_image": _ADMIN_OR_MEMBER,
    "publicize_image": _CONTEXT_ADMIN,
    "communitize_image": _ADMIN_OR_MEMBER,
    "download_image": _DOWNLOAD_IMAGE,
    "upload_image": _ADMIN_OR_MEMBER,
    "delete_image_location": _CONTEXT_ADMIN,
    "get_image_location": _ADMIN_OR_READER,
    "set_image_location": _ADMIN_OR_MEMBER,
    "add_member": _ADMIN_OR_MEMBER,
    "delete_member": _ADMIN_OR_MEMBER,
    "get_member": _READER_OR_SHARED_MEMBER,
    "get_members": _READER_OR_SHARED_MEMBER,
    "modify_member": _SHARED_MEMBER,
    "manage_image_cache": _CONTEXT_ADMIN,
    "tasks_api_access": _CONTEXT_ADMIN,
    "deactivate": _ADMIN_OR_MEMBER,
    "reactivate": _ADMIN_OR_MEMBER,
    "get_metadef_namespace": _GET_NAMESPACE,
    "get_metadef_namespaces": _ADMIN_OR_READER,
    "get_metadef_object": _GET_NAMESPACE,
    "get_metadef_objects": _GET_NAMESPACE,
    "list_metadef_resource_types": _GET_NAMESPACE,
    "get_metadef_resource_type": _GET_NAMESPACE,
    "get_metadef_property": _GET_NAMESPACE,
    "get_metadef_properties": _GET_NAMESPACE,
    "get_metadef_tag": _GET_NAMESPACE,
    "get_metadef_tags": _GET_NAMESPACE,
    "add_metadef_namespace": _METADEF_ADMIN,
    "modify_metadef_namespace": _METADEF_ADMIN,
    "delete_metadef_namespace": _METADEF_ADMIN,
    "add_metadef_object": _METADEF_ADMIN,
    "modify_metadef_object": _METADEF_ADMIN,
    "delete_metadef_object": _METADEF_ADMIN,
    "add_metadef_resource_type_association": _METADEF_ADMIN,
    "remove_metadef_resource_type_association": _METADEF_ADMIN,
    "add_metadef_property": _METADEF_ADMIN,
    "modify_metadef_property": _METADEF_ADMIN,
    "remove_metadef_property": _METADEF_ADMIN,
    "add_metadef_tag": _METADEF_ADMIN,
    "add_metadef_tags": _METADEF_ADMIN,
    "modify_metadef_tag": _METADEF_ADMIN,
    "delete_metadef_tag": _METADEF_ADMIN,
    "delete_metadef_tags": _METADEF_ADMIN,
    # Glance 2023.1 also checks copy_image for an image's owners, who then need admin
    # too; Glimpse keeps Victoria's rule that owners copy their own images.
    "copy_image": _CONTEXT_ADMIN,
    "stores_info_detail": _CONTEXT_ADMIN,
}

# Rules other rules refer to (metadef_admin only under the new defaults).
_HELPER_RULES: dict[str, tuple[str, str]] = {
    "metadef_admin": (_CONTEXT_ADMIN, "Who may change metadata definitions (new defaults)."),
    # Glance 2026.1 let admin in too, for services that do not send a service token yet.
    "service_api": ("role:service or role:admin", "Who is a service calling the service API."),
}

# Rules that apply to a project's resources; with enforce_scope a system- or
# domain-scoped token is refused by them, as in Glance 2023.1.
_UNSCOPED = frozenset({"context_is_admin", "default", "metadef_admin", "service_api"})
_DEPRECATION = "Glance's project-scoped defaults with the admin, member and reader personas."


def _rule(name: str, check: str, description: str, scoped: bool) -> oslo_policy.RuleDefault:
    new = _NEW_DEFAULTS.get(name, check)
    deprecated = None
    if new != check:
        deprecated = oslo_policy.DeprecatedRule(
            name, check, deprecated_reason=_DEPRECATION, deprecated_since="Wallaby"
        )
    scope_types = ["project"] if scoped and name not in _UNSCOPED else None
    return oslo_policy.RuleDefault(
        name, new, description=description, deprecated_rule=deprecated, scope_types=scope_types
    )


def list_rules(scoped: bool = True) -> list[oslo_policy.RuleDefault]:
    """Every rule with its defaults, for the enforcer and oslo.policy's sample generator.

    ``scoped`` gives the rules their scope types (documented by the generator,
    enforced only with ``[oslo_policy] enforce_scope``).
    """
    rules = {**_ROCKY_DEFAULTS, **_HELPER_RULES}
    return [_rule(name, check, description, scoped) for name, (check, description) in rules.items()]


def get_enforcer() -> oslo_policy.Enforcer:
    """The enforcer the service would use, for ``oslopolicy-policy-generator`` and friends.

    The oslopolicy tools pass no configuration file, so it reads ``glimpse-api.conf``
    where oslo.config looks for one (``~/.glimpse``, ``/etc/glimpse``, ...); the
    Glimpse commands themselves read only the files they are given.
    """
    from glimpse import config

    files = cfg.find_config_files(project="glimpse", prog="glimpse-api")
    return Policy(config.new_conf([], config_files=files)).enforcer


class Policy:
    """A thin, explicit wrapper over one oslo.policy enforcer."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        # Which defaults apply is the operator's choice, made once; oslo.policy would
        # otherwise warn about every rule whose default changed.
        self.enforcer = oslo_policy.Enforcer(conf, use_conf=True)
        self.enforcer.suppress_default_change_warnings = True
        self.enforcer.register_defaults(list_rules(scoped=conf.oslo_policy.enforce_scope))

    def check(
        self, context: RequestContext, action: str, target: Mapping[str, Any] | None = None
    ) -> bool:
        """Whether ``context`` may perform ``action`` on ``target``."""
        if context.is_admin and context.user_id is None and context.project_id is None:
            # The unauthenticated mode's caller (no identity at all) may do everything,
            # as under Glance's unauthenticated context.
            return True
        credentials = context.policy_credentials()
        target = dict(target or {})
        # Glance's targets name the owning project both ways (the new defaults say
        # project_id where Rocky's callers only said owner); a check on no resource
        # in particular (a list, a task) is about the caller's own project.
        target.setdefault("project_id", target.get("owner", context.project_id))
        return bool(self.enforcer.enforce(action, target, credentials, do_raise=False))

    def enforce(
        self, context: RequestContext, action: str, target: Mapping[str, Any] | None = None
    ) -> None:
        """Raise :class:`~glimpse.errors.PolicyDenied` unless the action is allowed."""
        if not self.check(context, action, target):
            raise errors.PolicyDenied(f"You are not authorized to complete {action} action.")

    def is_admin(self, context: RequestContext) -> bool:
        """``context_is_admin`` for a context whose admin flag is not decided yet."""
        return self.check(context, "context_is_admin", {})
