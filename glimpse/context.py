"""The request context: who is asking, as Glance builds it behind its auth middleware."""

from __future__ import annotations

import dataclasses
import uuid


@dataclasses.dataclass
class RequestContext:
    """Identity and request facts passed explicitly to every service function."""

    user_id: str | None = None
    project_id: str | None = None
    roles: list[str] = dataclasses.field(default_factory=list)
    is_admin: bool = False
    read_only: bool = False
    owner_is_tenant: bool = True
    auth_token: str | None = None
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    system_scope: str | None = None
    #: Keystone's is_admin_project flag of the token (true unless Keystone names an admin project).
    is_admin_project: bool = True
    service_roles: list[str] = dataclasses.field(default_factory=list)
    request_id: str = dataclasses.field(default_factory=lambda: "req-" + str(uuid.uuid4()))

    @property
    def owner(self) -> str | None:
        """Whose images this caller creates and owns: its project, or its user."""
        return self.project_id if self.owner_is_tenant else self.user_id

    def policy_credentials(self) -> dict[str, object]:
        """The credentials dict oslo.policy rules are checked against."""
        return {
            "user_id": self.user_id,
            "user": self.user_id,
            "project_id": self.project_id,
            "tenant": self.project_id,
            "roles": list(self.roles),
            "is_admin": self.is_admin,
            "user_domain_id": self.user_domain_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "is_admin_project": self.is_admin_project,
            "service_roles": list(self.service_roles),
        }
