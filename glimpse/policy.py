"""Authorisation through oslo.policy, with Glance's rule names and Rocky's shipped defaults.

An operator's policy file (``[oslo_policy] policy_file``, YAML or JSON) overrides
any rule. The service layer calls :meth:`Policy.enforce` explicitly; nothing is
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

# Rocky's etc/policy.json, the file deployments actually ran with.
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
}


def list_rules() -> list[oslo_policy.RuleDefault]:
    """Every rule with its default, for oslo.policy's sample generator."""
    return [
        oslo_policy.RuleDefault(name, check, description=description)
        for name, (check, description) in _ROCKY_DEFAULTS.items()
    ]


class Policy:
    """A thin, explicit wrapper over one oslo.policy enforcer."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self._enforcer = oslo_policy.Enforcer(conf, use_conf=True)
        self._enforcer.register_defaults(list_rules())

    def check(
        self, context: RequestContext, action: str, target: Mapping[str, Any] | None = None
    ) -> bool:
        """Whether ``context`` may perform ``action`` on ``target``."""
        credentials = context.policy_credentials()
        return bool(self._enforcer.enforce(action, dict(target or {}), credentials, do_raise=False))

    def enforce(
        self, context: RequestContext, action: str, target: Mapping[str, Any] | None = None
    ) -> None:
        """Raise :class:`~glimpse.errors.PolicyDenied` unless the action is allowed."""
        if not self.check(context, action, target):
            raise errors.PolicyDenied(f"You are not authorized to complete {action} action.")

    def is_admin(self, context: RequestContext) -> bool:
        """``context_is_admin`` for a context whose admin flag is not decided yet."""
        return self.check(context, "context_is_admin", {})
