"""Multi-store in process: several file stores (and a read-only http one) from
``enabled_backends``; uploads and imports by store, /v2/info/stores, copy-image,
deleting an image's data from one store, and the configuration rules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from glimpse import config
from glimpse.config.backends import StoreConfigError
from glimpse.services import scrub
from tests.support.client import Api
from tests.support.multistore import DATA, OCTET, MultiStore


@pytest.fixture
def multi(make_multi: Callable[..., MultiStore]) -> MultiStore:
    return make_multi()


# --- discovery -------------------------------------------------------------------------


def test_info_stores_lists_every_store(multi: MultiStore) -> None:
    response = multi.api.get("/v2/info/stores")
    assert response.status_code == 200
    assert response.json() == {
        "stores": [
            {"id": "fast", "description": "Fast local disks", "default": "true"},
            {"id": "cheap", "description": "Cheap disks"},
            {"id": "archive"},
            {"id": "web", "read-only": "true"},
        ]
    }


def test_info_stores_is_404_without_multi_store(api: Api) -> None:
    response = api.get("/v2/info/stores", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json()["message"].startswith("Multi backend is not supported at this site.")


def test_info_stores_detail_shows_types_weights_and_properties_to_admins(
    multi: MultiStore,
) -> None:
    response = multi.api.as_("ops", roles="admin").get("/v2/info/stores/detail")
    assert response.status_code == 200, response.text
    read_chunk = 1 << 20

    def file_store(store_id: str) -> dict[str, Any]:
        return {
            "data_dir": str(multi.store_dir(store_id)),
            "chunk_size": read_chunk,
            "thin_provisioning": False,
        }

    assert response.json() == {
        "stores": [
            {
                "id": "fast",
                "description": "Fast local disks",
                "default": "true",
                "type": "file",
                "weight": 0,
                "properties": file_store("fast"),
            },
            {
                "id": "cheap",
                "description": "Cheap disks",
                "type": "file",
                "weight": 5,
                "properties": file_store("cheap"),
            },
            {"id": "archive", "type": "file", "weight": 0, "properties": file_store("archive")},
            {"id": "web", "read-only": "true", "type": "http", "weight": 0, "properties": {}},
        ]
    }


def test_info_stores_detail_is_403_for_others_and_404_without_multi_store(
    multi: MultiStore, api: Api
) -> None:
    for roles in ("member", "reader", "member,reader"):
        response = multi.api.as_("alpha", roles=roles).get(
            "/v2/info/stores/detail", headers={"Accept": "application/json"}
        )
        assert response.status_code == 403
        assert "stores_info_detail" in response.json()["message"]
    response = api.get("/v2/info/stores/detail", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json()["message"].startswith("Multi backend is not supported at this site.")


def test_versions_list_and_accept_the_multi_store_versions(multi: MultiStore) -> None:
    # What Glance lists with enabled_backends (and no image cache), newest first.
    versions = multi.api.get("/versions").json()["versions"]
    assert [(v["id"], v["status"]) for v in versions] == [
        ("v2.17", "CURRENT"),
        *[
            (f"v{minor}", "SUPPORTED")
            for minor in ("2.15", "2.13", "2.12", "2.11", "2.10", "2.9", "2.8", "2.7")
        ],
        *[(f"v2.{minor}", "SUPPORTED") for minor in range(6, -1, -1)],
    ]
    for version in ("2.8", "2.10", "2.11", "2.12", "2.13"):
        assert multi.api.get(f"/v{version}/images").status_code == 200, version
        accept = {"Accept": f"application/vnd.openstack.images-v{version}"}
        assert multi.api.get("/images", headers=accept).status_code == 200, version
    for version in ("2.14", "2.16", "2.18"):
        assert multi.api.get(f"/v{version}/images").status_code == 300, version


def test_image_create_announces_the_store_ids(multi: MultiStore, api: Api) -> None:
    response = multi.api.post("/v2/images", json={"name": "x"})
    assert response.headers["OpenStack-image-store-ids"] == "fast,cheap,archive,web"
    assert "OpenStack-image-store-ids" not in api.post("/v2/images", json={}).headers


# --- upload ----------------------------------------------------------------------------


def test_upload_goes_to_the_named_store_and_reads_back(multi: MultiStore) -> None:
    image_id = multi.uploaded("cheap")
    assert multi.stored("cheap") == [image_id]
    assert multi.stored("fast") == []
    image = multi.image(image_id)
    assert image["stores"] == "cheap"
    assert image["status"] == "active" and image["size"] == len(DATA)
    assert multi.api.get(f"/v2/images/{image_id}/file").content == DATA


def test_upload_without_header_goes_to_the_default_store(multi: MultiStore) -> None:
    image_id = multi.uploaded()
    assert multi.stored("fast") == [image_id]
    assert multi.image(image_id)["stores"] == "fast"


def test_upload_to_an_unknown_store_is_400_and_keeps_the_image_queued(multi: MultiStore) -> None:
    image_id = multi.new_image()
    response = multi.upload(image_id, "nowhere")
    assert response.status_code == 400
    assert "Store for identifier nowhere not found" in response.text
    assert multi.image(image_id)["status"] == "queued"
    assert multi.upload(image_id, "archive").status_code == 204


def test_upload_to_the_read_only_http_store_is_410(multi: MultiStore) -> None:
    image_id = multi.new_image()
    assert multi.upload(image_id, "web").status_code == 410
    assert multi.image(image_id)["status"] == "queued"


def test_the_store_header_is_ignored_without_multi_store(api: Api) -> None:
    image_id = api.create_image(disk_format="raw", container_format="bare")["id"]
    headers = {**OCTET, "X-Image-Meta-Store": "nowhere"}
    assert api.put(f"/v2/images/{image_id}/file", content=b"x", headers=headers).status_code == 204
    assert "stores" not in api.get(f"/v2/images/{image_id}").json()


def test_locations_carry_their_store_and_stores_follows_them(
    make_multi: Callable[..., MultiStore],
) -> None:
    multi = make_multi({"DEFAULT": {"show_multiple_locations": True}})
    image_id = multi.uploaded("archive")
    locations = multi.image(image_id)["locations"]
    assert locations == [
        {"url": f"file://{multi.store_dir('archive')}/{image_id}", "metadata": {"store": "archive"}}
    ]


def test_a_store_that_fails_answers_clearly_and_leaves_the_others_working(
    multi: MultiStore,
) -> None:
    # The folder of "archive" disappears under it: its writes fail, nothing else does.
    shutil.rmtree(multi.store_dir("archive"))
    image_id = multi.new_image()
    response = multi.upload(image_id, "archive")
    assert 500 <= response.status_code < 600, response.text
    assert "store" in response.text.lower()
    assert multi.image(image_id)["status"] == "queued"
    assert multi.upload(image_id, "cheap").status_code == 204
    assert multi.stored("cheap") == [image_id]


# --- import ----------------------------------------------------------------------------


def test_import_to_the_store_named_by_the_header(multi: MultiStore) -> None:
    image_id = multi.new_image()
    multi.stage(image_id)
    method = {"method": {"name": "glance-direct"}}
    assert multi.import_(image_id, method, **{"X-Image-Meta-Store": "cheap"}).status_code == 202
    assert multi.image(image_id)["os_glance_importing_to_stores"] == "cheap"
    multi.run_worker()
    image = multi.image(image_id)
    assert image["status"] == "active" and image["stores"] == "cheap"
    assert image["os_glance_importing_to_stores"] == ""
    assert image["os_glance_failed_import"] == ""
    assert multi.stored("cheap") == [image_id]


def test_import_to_an_unknown_store_is_409(multi: MultiStore) -> None:
    image_id = multi.new_image()
    multi.stage(image_id)
    method = {"method": {"name": "glance-direct"}}
    assert multi.import_(image_id, method, **{"X-Image-Meta-Store": "nowhere"}).status_code == 409
    assert multi.import_(image_id, {**method, "stores": ["fast", "nowhere"]}).status_code == 409
    assert multi.import_(image_id, {**method, "stores": ["web"]}).status_code == 409
    assert multi.image(image_id)["status"] == "uploading"


def test_import_store_fields_are_checked(multi: MultiStore) -> None:
    image_id = multi.new_image()
    multi.stage(image_id)
    method = {"method": {"name": "glance-direct"}}
    header = {"X-Image-Meta-Store": "fast"}
    bad = [
        ({**method, "all_stores": True, "stores": ["fast"]}, {}),
        ({**method, "all_stores": True}, header),
        ({**method, "stores": ["fast"]}, header),
        ({**method, "stores": []}, {}),
        ({**method, "stores": "fast"}, {}),
        ({**method, "all_stores": "yes"}, {}),
        ({**method, "all_stores_must_succeed": "no"}, {}),
    ]
    for body, headers in bad:
        assert multi.import_(image_id, body, **headers).status_code == 400, body


def test_import_to_several_stores(multi: MultiStore) -> None:
    image_id = multi.new_image()
    multi.stage(image_id)
    body = {"method": {"name": "glance-direct"}, "stores": ["cheap", "archive"]}
    assert multi.import_(image_id, body).status_code == 202
    assert multi.image(image_id)["os_glance_importing_to_stores"] == "cheap,archive"
    multi.run_worker()
    image = multi.image(image_id)
    assert image["status"] == "active"
    assert image["stores"] == "cheap,archive"
    assert multi.stored("cheap") == multi.stored("archive") == [image_id]
    assert multi.stored("fast") == []


def test_import_to_all_stores_skips_the_read_only_one(multi: MultiStore) -> None:
    image_id = multi.new_image()
    multi.stage(image_id)
    assert (
        multi.import_(
            image_id, {"method": {"name": "glance-direct"}, "all_stores": True}
        ).status_code
        == 202
    )
    multi.run_worker()
    assert multi.image(image_id)["stores"] == "fast,cheap,archive"


def test_a_failing_store_fails_the_whole_import_by_default(multi: MultiStore) -> None:
    shutil.rmtree(multi.store_dir("archive"))
    image_id = multi.new_image()
    multi.stage(image_id)
    body = {"method": {"name": "glance-direct"}, "stores": ["cheap", "archive", "fast"]}
    assert multi.import_(image_id, body).status_code == 202
    multi.run_worker()
    image = multi.image(image_id)
    assert image["status"] == "queued"
    assert "stores" not in image
    assert image["os_glance_importing_to_stores"] == ""
    assert image["os_glance_failed_import"] == "cheap,archive,fast"
    # Nothing is left where the import did write.
    assert multi.stored("cheap") == multi.stored("fast") == []
    task = multi.api.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["status"] == "failure" and "archive" in task["message"]


def test_a_failing_store_is_recorded_when_others_may_succeed(multi: MultiStore) -> None:
    shutil.rmtree(multi.store_dir("archive"))
    image_id = multi.new_image()
    multi.stage(image_id)
    body = {
        "method": {"name": "glance-direct"},
        "stores": ["cheap", "archive", "fast"],
        "all_stores_must_succeed": False,
    }
    assert multi.import_(image_id, body).status_code == 202
    multi.run_worker()
    image = multi.image(image_id)
    assert image["status"] == "active"
    assert image["stores"] == "cheap,fast"
    assert image["os_glance_importing_to_stores"] == ""
    assert image["os_glance_failed_import"] == "archive"
    assert multi.api.get(f"/v2/images/{image_id}/file").content == DATA


# --- copy-image ------------------------------------------------------------------------


def test_copy_image_is_offered_only_when_configured_and_multi_store(
    make_multi: Callable[..., MultiStore], make_api: Callable[..., Api]
) -> None:
    methods = "glance-direct,web-download,copy-image"
    multi = make_multi({"DEFAULT": {"enabled_import_methods": methods}})
    assert "copy-image" in multi.api.get("/v2/info/import").json()["import-methods"]["value"]
    created = multi.api.post("/v2/images", json={})
    assert "copy-image" in created.headers["OpenStack-image-import-methods"]
    assert "copy-image" not in make_multi().api.get("/v2/info/import").text
    single = make_api(enabled_import_methods=methods.split(","))
    assert "copy-image" not in single.get("/v2/info/import").text
    image_id = single.create_image(disk_format="raw", container_format="bare")["id"]
    single.put(f"/v2/images/{image_id}/file", content=b"x", headers=OCTET)
    body = {"method": {"name": "copy-image"}}
    assert single.post(f"/v2/images/{image_id}/import", json=body).status_code == 400


@pytest.fixture
def copying(make_multi: Callable[..., MultiStore]) -> MultiStore:
    return make_multi({"DEFAULT": {"enabled_import_methods": "glance-direct,copy-image"}})


def test_copy_image_copies_an_active_image_to_more_stores(copying: MultiStore) -> None:
    image_id = copying.uploaded("fast")
    before = copying.image(image_id)
    body = {"method": {"name": "copy-image"}, "stores": ["cheap", "archive"]}
    assert copying.import_(image_id, body).status_code == 202
    during = copying.image(image_id)
    assert during["status"] == "active"
    assert during["os_glance_importing_to_stores"] == "cheap,archive"
    copying.run_worker()
    after = copying.image(image_id)
    assert after["status"] == "active"
    assert after["stores"] == "fast,cheap,archive"
    assert after["os_glance_importing_to_stores"] == "" and after["os_glance_failed_import"] == ""
    assert "os_glance_import_task" not in after
    for key in ("checksum", "os_hash_value", "size"):
        assert after[key] == before[key]
    for store in ("fast", "cheap", "archive"):
        assert (copying.store_dir(store) / image_id).read_bytes() == DATA
    assert os.listdir(copying.rt.stores.staging.driver.datadir) == []


def test_copy_image_rules(copying: MultiStore) -> None:
    queued = copying.new_image()
    body = {"method": {"name": "copy-image"}, "stores": ["cheap"]}
    assert copying.import_(queued, body).status_code == 409
    image_id = copying.uploaded("fast")
    already = {"method": {"name": "copy-image"}, "stores": ["fast"]}
    response = copying.import_(image_id, already)
    assert response.status_code == 400 and "already present at store" in response.text
    assert copying.import_(image_id, body).status_code == 202
    # A second operation while the first is pending: the import lock.
    assert copying.import_(image_id, {**body, "stores": ["archive"]}).status_code == 409
    copying.run_worker()
    # all_stores copies only where the image is missing.
    everywhere = {"method": {"name": "copy-image"}, "all_stores": True}
    assert copying.import_(image_id, everywhere).status_code == 202
    assert copying.image(image_id)["os_glance_importing_to_stores"] == "archive"
    copying.run_worker()
    assert copying.image(image_id)["stores"] == "fast,cheap,archive"
    # Nothing left to copy: accepted, and no task is made.
    tasks = len(copying.api.get(f"/v2/images/{image_id}/tasks").json()["tasks"])
    assert copying.import_(image_id, everywhere).status_code == 202
    assert len(copying.api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]) == tasks


def _community_image_of_alpha(multi: MultiStore) -> str:
    """An active image of project alpha in "fast", which every project can see."""
    alpha = multi.api.as_("alpha")
    image_id = alpha.create_image(
        name="c", disk_format="raw", container_format="bare", visibility="community"
    )["id"]
    response = alpha.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)
    assert response.status_code == 204, response.text
    return image_id


def test_copying_an_image_one_does_not_own_takes_the_copy_image_policy(
    copying: MultiStore,
) -> None:
    image_id = _community_image_of_alpha(copying)
    body = {"method": {"name": "copy-image"}, "stores": ["cheap"]}

    # Another project's member sees the image but may not copy it: admin-only by default.
    refused = copying.api.as_("beta").post(f"/v2/images/{image_id}/import", json=body)
    assert refused.status_code == 403
    assert "You are not authorized to complete copy_image action." in refused.text
    assert copying.image(image_id).get("os_glance_importing_to_stores", "") == ""
    assert copying.api.get(f"/v2/images/{image_id}/tasks").json()["tasks"] == []
    # Nor may they use another import method on it (that is modifying it).
    staged = {"method": {"name": "glance-direct"}}
    assert (
        copying.api.as_("beta").post(f"/v2/images/{image_id}/import", json=staged).status_code
        == 403
    )

    # An administrator of another project may, and the owner may copy their own image.
    admin = copying.api.as_("ops", roles="admin,member,reader")
    assert admin.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    copying.run_worker()
    assert copying.image(image_id)["stores"] == "fast,cheap"
    own = {"method": {"name": "copy-image"}, "stores": ["archive"]}
    alpha = copying.api.as_("alpha")
    assert alpha.post(f"/v2/images/{image_id}/import", json=own).status_code == 202
    copying.run_worker()
    assert copying.image(image_id)["stores"] == "fast,cheap,archive"
    assert copying.stored("archive") == [image_id]


def test_an_image_one_cannot_see_is_404_to_copy_whatever_the_policy(
    copying: MultiStore,
) -> None:
    alpha = copying.api.as_("alpha")
    image_id = alpha.create_image(disk_format="raw", container_format="bare")["id"]
    assert alpha.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET).status_code == 204
    body = {"method": {"name": "copy-image"}, "stores": ["cheap"]}
    assert (
        copying.api.as_("beta").post(f"/v2/images/{image_id}/import", json=body).status_code == 404
    )


def test_an_operator_may_open_copy_image_to_members(
    make_multi: Callable[..., MultiStore], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text('"copy_image": "role:member and \'community\':%(visibility)s"\n')
    multi = make_multi(
        {
            "DEFAULT": {"enabled_import_methods": "glance-direct,copy-image"},
            "oslo_policy": {"policy_file": policy},
        }
    )
    image_id = _community_image_of_alpha(multi)
    body = {"method": {"name": "copy-image"}, "stores": ["cheap"]}
    beta = multi.api.as_("beta")
    assert beta.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    multi.run_worker()
    image = multi.image(image_id)
    assert image["stores"] == "fast,cheap" and image["owner"] == "alpha"
    assert (multi.store_dir("cheap") / image_id).read_bytes() == DATA
    # The copy changed nothing else a member of beta could not change.
    assert (
        beta.patch(
            f"/v2/images/{image_id}", [{"op": "replace", "path": "/name", "value": "x"}]
        ).status_code
        == 403
    )


def test_copy_to_a_failing_store_keeps_the_image_and_records_the_store(
    copying: MultiStore,
) -> None:
    image_id = copying.uploaded("fast")
    shutil.rmtree(copying.store_dir("archive"))
    body = {"method": {"name": "copy-image"}, "stores": ["cheap", "archive"]}
    assert copying.import_(image_id, body).status_code == 202
    copying.run_worker()
    image = copying.image(image_id)
    assert image["status"] == "active" and image["stores"] == "fast"
    assert image["os_glance_failed_import"] == "cheap,archive"
    assert copying.stored("cheap") == []
    assert copying.api.get(f"/v2/images/{image_id}/file").content == DATA
    # Allowing failures keeps the copies that worked.
    assert copying.import_(image_id, {**body, "all_stores_must_succeed": False}).status_code == 202
    copying.run_worker()
    image = copying.image(image_id)
    assert image["stores"] == "fast,cheap"
    assert image["os_glance_failed_import"] == "archive"


# --- delete from one store -------------------------------------------------------------


def _in_two_stores(multi: MultiStore) -> str:
    image_id = multi.new_image()
    multi.stage(image_id)
    body = {"method": {"name": "glance-direct"}, "stores": ["fast", "cheap"]}
    assert multi.import_(image_id, body).status_code == 202
    multi.run_worker()
    return image_id


def test_delete_from_store_removes_that_copy_only(multi: MultiStore) -> None:
    image_id = _in_two_stores(multi)
    response = multi.api.delete(f"/v2/stores/fast/{image_id}")
    assert response.status_code == 204, response.text
    assert multi.stored("fast") == [] and multi.stored("cheap") == [image_id]
    assert multi.image(image_id)["stores"] == "cheap"
    assert multi.api.get(f"/v2/images/{image_id}/file").content == DATA
    # The last copy cannot go this way.
    assert multi.api.delete(f"/v2/stores/cheap/{image_id}").status_code == 403
    assert multi.stored("cheap") == [image_id]


def test_delete_from_store_errors(multi: MultiStore, api: Api) -> None:
    image_id = _in_two_stores(multi)
    assert multi.api.delete(f"/v2/stores/nowhere/{image_id}").status_code == 409
    assert multi.api.delete(f"/v2/stores/archive/{image_id}").status_code == 404
    assert multi.api.delete(f"/v2/stores/fast/{multi.new_image()}").status_code == 409
    missing = "8e4f5a3b-0000-4000-8000-000000000000"
    assert multi.api.delete(f"/v2/stores/fast/{missing}").status_code == 404
    other = multi.api.as_("projB")
    assert other.delete(f"/v2/stores/fast/{image_id}").status_code in (403, 404)
    assert multi.stored("fast") == [image_id]
    # Without multi-store the route exists but finds nothing.
    assert api.delete(f"/v2/stores/fast/{image_id}").status_code == 404


def test_delete_from_store_with_delayed_delete_leaves_the_data_to_the_scrubber(
    make_multi: Callable[..., MultiStore],
) -> None:
    multi = make_multi({"DEFAULT": {"delayed_delete": True}})
    image_id = _in_two_stores(multi)
    assert multi.api.delete(f"/v2/stores/fast/{image_id}").status_code == 204
    assert multi.image(image_id)["stores"] == "cheap"
    assert multi.stored("fast") == [image_id]
    scrub.run_pass(multi.rt)
    assert multi.stored("fast") == []
    assert multi.stored("cheap") == [image_id]


# --- weights ---------------------------------------------------------------------------


def test_the_heaviest_store_serves_downloads_and_direct_url(
    make_multi: Callable[..., MultiStore],
) -> None:
    multi = make_multi({"DEFAULT": {"show_image_direct_url": True}})
    image_id = _in_two_stores(multi)
    # "cheap" weighs 5, "fast" 0.
    assert multi.image(image_id)["direct_url"].startswith(f"file://{multi.store_dir('cheap')}")
    (multi.store_dir("cheap") / image_id).write_bytes(b"x" * len(DATA))
    assert multi.api.get(f"/v2/images/{image_id}/file").content == b"x" * len(DATA)


# --- configuration ---------------------------------------------------------------------


def _stores_of(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "stores.conf"
    path.write_text(f"[DEFAULT]\ndata_dir = {tmp_path}/data\n" + text)
    from glimpse.store.registry import Stores

    return Stores.from_conf(config.new_conf(["--config-file", str(path)]))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "enabled_backends = os_glance_mine:file\n[glance_store]\ndefault_backend = x\n",
            "Store id 'os_glance_mine' in enabled_backends is reserved",
        ),
        ("enabled_backends = a:file\n", "[glance_store] default_backend is required"),
        (
            "enabled_backends = a:file\n[glance_store]\ndefault_backend = b\n",
            "default_backend 'b' is not a store of enabled_backends",
        ),
        (
            "enabled_backends = a:rbd\n[glance_store]\ndefault_backend = a\n",
            "unknown type 'rbd'",
        ),
        (
            "enabled_backends = database:file\n[glance_store]\ndefault_backend = database\n",
            "is the name of one of Glimpse's own configuration groups",
        ),
        (
            "enabled_backends = a:swift\n[glance_store]\ndefault_backend = a\n",
            "Store 'a' needs swift_store_auth_address, swift_store_user, swift_store_key in [a]",
        ),
        (
            "enabled_backends = a:file, b:file\n[glance_store]\ndefault_backend = a\n"
            "[a]\nfilesystem_store_datadir = /tmp/same\n"
            "[b]\nfilesystem_store_datadir = /tmp/same\n",
            "use the same folder",
        ),
        (
            "[glance_store]\nstores = file\ndefault_store = swift\n",
            "default_store 'swift' is not one of [glance_store] stores",
        ),
    ],
)
def test_unfit_store_configurations_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(StoreConfigError) as refused:
        _stores_of(tmp_path, text)
    assert message in str(refused.value)


def test_single_store_form_still_reads_glance_store(tmp_path: Path) -> None:
    stores = _stores_of(
        tmp_path, f"[glance_store]\nstores = file\nfilesystem_store_datadir = {tmp_path}/img\n"
    )
    assert not stores.multi
    assert list(stores.drivers) == ["file"]
    assert stores.default.datadir == f"{tmp_path}/img"


def test_glimpse_api_refuses_a_reserved_store_id_at_start(tmp_path: Path) -> None:
    path = tmp_path / "api.conf"
    path.write_text(
        f"[DEFAULT]\ndata_dir = {tmp_path}/data\nenabled_backends = os_glance_x:file\n"
        "[glance_store]\ndefault_backend = os_glance_x\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "glimpse.cmd.api", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ERROR: Store id 'os_glance_x' in enabled_backends is reserved" in done.stderr


def test_single_store_swift_and_s3_read_their_options_from_glance_store(tmp_path: Path) -> None:
    from glimpse.store.s3 import S3Store
    from glimpse.store.swift import SwiftStore

    stores = _stores_of(
        tmp_path,
        "[glance_store]\nstores = file, http, swift, s3\ndefault_store = swift\n"
        "swift_store_auth_address = http://127.0.0.1:8080/auth/v1.0\n"
        "swift_store_user = test:tester\nswift_store_key = testing\n"
        "swift_store_auth_version = 1\nswift_store_container = images\n"
        "s3_store_host = http://127.0.0.1:8080\ns3_store_access_key = a\n"
        "s3_store_secret_key = b\ns3_store_bucket = bucket\n",
    )
    assert not stores.multi and stores.default_id == "swift"
    assert isinstance(stores.default, SwiftStore) and stores.default.container == "images"
    s3 = stores.drivers["s3"]
    assert isinstance(s3, S3Store) and s3.bucket == "bucket"
    assert list(stores.drivers) == ["file", "http", "swift", "s3"]
