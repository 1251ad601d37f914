"""Both sets of policy defaults, and oslo.policy's command-line tools on the glimpse namespace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from glimpse import config
from glimpse.context import RequestContext
from glimpse.policy import Policy, list_rules

BIN = Path(sys.executable).parent


def _policy(**overrides: object) -> Policy:
    conf = config.new_conf([])
    for name, value in overrides.items():
        conf.set_override(name, value, group="oslo_policy")
    return Policy(conf)


def _who(project: str | None, *roles: str, **fields: object) -> RequestContext:
    context = RequestContext(user_id="u", project_id=project, roles=list(roles))
    for name, value in fields.items():
        setattr(context, name, value)
    return context


ADMIN = _who("ops", "admin", "member", "reader")
MEMBER = _who("alpha", "member", "reader")
READER = _who("alpha", "reader")
OTHER = _who("beta", "member", "reader")
SERVICE = _who("service", "service")
PRIVATE = {"owner": "alpha", "project_id": "alpha", "visibility": "private", "member_id": None}
SHARED_WITH_BETA = {**PRIVATE, "visibility": "shared", "member_id": "beta"}

# (rule, context, target, Rocky allows, new defaults allow)
MATRIX = [
    ("add_image", READER, {"owner": "alpha"}, True, False),
    ("add_image", MEMBER, {"owner": "alpha"}, True, True),
    ("add_image", MEMBER, {"owner": "beta"}, True, False),
    ("add_image", ADMIN, {"owner": "beta"}, True, True),
    ("get_image", READER, PRIVATE, True, True),
    ("get_image", OTHER, PRIVATE, True, False),
    ("get_image", OTHER, {**PRIVATE, "visibility": "public"}, True, True),
    ("get_images", READER, {}, True, True),
    ("modify_image", READER, PRIVATE, True, False),
    ("modify_image", MEMBER, PRIVATE, True, True),
    ("download_image", READER, PRIVATE, True, False),
    ("download_image", OTHER, SHARED_WITH_BETA, True, True),
    ("publicize_image", MEMBER, PRIVATE, False, False),
    ("publicize_image", ADMIN, PRIVATE, True, True),
    ("communitize_image", MEMBER, PRIVATE, True, True),
    ("delete_image_location", MEMBER, PRIVATE, True, False),
    ("add_member", READER, PRIVATE, True, False),
    ("modify_member", OTHER, SHARED_WITH_BETA, True, True),
    ("modify_member", MEMBER, SHARED_WITH_BETA, True, False),
    ("get_members", OTHER, SHARED_WITH_BETA, True, True),
    ("deactivate", MEMBER, PRIVATE, True, True),
    ("tasks_api_access", MEMBER, {}, False, False),
    ("add_task", READER, {"owner": "alpha"}, True, True),
    ("add_metadef_namespace", MEMBER, {"owner": "alpha"}, True, False),
    ("add_metadef_namespace", ADMIN, {"owner": "alpha"}, True, True),
    ("get_metadef_namespace", OTHER, {"owner": "alpha", "visibility": "public"}, True, True),
    ("get_metadef_namespace", OTHER, {"owner": "alpha", "visibility": "private"}, True, False),
    ("list_metadef_resource_types", READER, {}, True, True),
    ("copy_image", OTHER, {**PRIVATE, "visibility": "public"}, False, False),
    ("copy_image", MEMBER, PRIVATE, False, False),
    ("copy_image", ADMIN, PRIVATE, True, True),
    ("stores_info_detail", MEMBER, {}, False, False),
    ("stores_info_detail", ADMIN, {}, True, True),
    # Images API 2.17: the same defaults either way (Glance 2026.1's).
    ("add_image_location", MEMBER, PRIVATE, True, True),
    ("add_image_location", READER, PRIVATE, False, False),
    ("add_image_location", OTHER, PRIVATE, False, False),
    ("add_image_location", SERVICE, PRIVATE, True, True),
    ("add_image_location", ADMIN, PRIVATE, True, True),
    ("fetch_image_location", MEMBER, PRIVATE, False, False),
    ("fetch_image_location", SERVICE, PRIVATE, True, True),
    ("fetch_image_location", ADMIN, PRIVATE, True, True),
]


@pytest.mark.parametrize(("rule", "who", "target", "rocky", "new"), MATRIX)
def test_rocky_and_new_defaults(
    rule: str, who: RequestContext, target: dict[str, object], rocky: bool, new: bool
) -> None:
    assert _policy().check(who, rule, target) is rocky
    assert _policy(enforce_new_defaults=True).check(who, rule, target) is new


def test_rocky_is_the_default_even_though_oslo_policy_defaults_to_the_new_rules() -> None:
    conf = config.new_conf([])
    assert conf.oslo_policy.enforce_new_defaults is False
    assert conf.oslo_policy.enforce_scope is False


def test_scope_is_checked_only_with_enforce_scope() -> None:
    system_admin = _who(None, "admin", "reader", system_scope="all")
    assert _policy(enforce_new_defaults=True).check(system_admin, "get_images", {})
    scoped = _policy(enforce_new_defaults=True, enforce_scope=True)
    assert not scoped.check(system_admin, "get_images", {})
    assert scoped.check(ADMIN, "get_images", {})
    assert scoped.is_admin(system_admin)  # context_is_admin has no scope


def test_every_registered_rule_documents_both_defaults() -> None:
    rules = {rule.name: rule for rule in list_rules()}
    assert rules["get_image"].deprecated_rule is not None
    assert rules["get_image"].deprecated_rule.check_str == ""
    assert rules["publicize_image"].deprecated_rule.check_str == "role:admin"  # type: ignore[union-attr]
    assert rules["get_image"].scope_types == ["project"]
    assert rules["context_is_admin"].scope_types is None
    assert all(rule.description for rule in rules.values())


def _run(tool: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_sample_generator(tmp_path: Path) -> None:
    output = tmp_path / "policy.yaml.sample"
    _run(
        "oslopolicy-sample-generator",
        "--namespace",
        "glimpse",
        "--output-file",
        str(output),
        cwd=tmp_path,
    )
    sample = output.read_text()
    assert '#"add_image": "rule:context_is_admin or (role:member and' in sample
    assert '"add_image":"" has been deprecated' in sample
    assert '#"publicize_image": "rule:context_is_admin"' in sample
    assert '#"copy_image": "rule:context_is_admin"' in sample
    assert '"copy_image":"role:admin" has been deprecated' in sample
    assert '#"stores_info_detail": "rule:context_is_admin"' in sample


def test_policy_generator_and_checker(tmp_path: Path) -> None:
    effective = tmp_path / "policy.yaml"
    _run(
        "oslopolicy-policy-generator",
        "--namespace",
        "glimpse",
        "--output-file",
        str(effective),
        cwd=tmp_path,
    )
    access = tmp_path / "access.json"
    token = {
        "token": {
            "user": {"id": "u1", "domain": {"id": "default"}},
            "project": {"id": "alpha", "domain": {"id": "default"}},
            "roles": [{"name": "reader"}],
        }
    }
    access.write_text(json.dumps(token))
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"project_id": "alpha", "owner": "alpha"}))

    def check(rule: str) -> str:
        return _run(
            "oslopolicy-checker",
            "--policy",
            str(effective),
            "--access",
            str(access),
            "--target",
            str(target),
            "--rule",
            rule,
            cwd=tmp_path,
        ).strip()

    assert check("get_images") == "passed: get_images"
    assert check("add_image") == "failed: add_image"
