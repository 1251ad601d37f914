"""Options of the ``[DEFAULT]`` group: the API service, limits and quotas."""

from __future__ import annotations

from oslo_config import cfg

from glimpse.config.lists import GlanceListOpt

_server = [
    cfg.HostAddressOpt("bind_host", default="127.0.0.1", help="Address the API server listens on."),
    cfg.PortOpt("bind_port", default=9292, help="Port the API server listens on."),
    cfg.IntOpt(
        "workers",
        default=1,
        min=0,
        help="Number of API worker processes. 0 means one per CPU core.",
    ),
    cfg.StrOpt(
        "http_server",
        default="uvicorn",
        choices=[
            ("uvicorn", "uvicorn, with httptools and uvloop when installed."),
            ("granian", "granian (the optional 'granian' extra: pip install 'glimpse[granian]')."),
        ],
        help="The HTTP server that runs the API. Both honour bind_host, bind_port, workers, "
        "graceful_shutdown_timeout and SIGHUP.",
    ),
    cfg.IntOpt(
        "graceful_shutdown_timeout",
        default=60,
        min=0,
        help="Seconds the server waits on SIGTERM for requests in flight (such as uploads) "
        "to finish before it stops.",
    ),
    cfg.StrOpt(
        "data_dir",
        help="Folder holding the embedded default's SQLite database, image files and staging "
        "area. Defaults to $GLIMPSE_DATA_DIR or ~/.local/share/glimpse.",
    ),
    cfg.StrOpt(
        "public_endpoint",
        help="Public URL of this service, used in the versions document instead of the "
        "request's host.",
    ),
    cfg.IntOpt(
        "max_request_id_length",
        default=64,
        min=0,
        max=251,
        help="Longest request id accepted from a client's X-Openstack-Request-ID header "
        "(at most 251: with the req- prefix it must fit the 255 characters a task records).",
    ),
    cfg.BoolOpt(
        "allow_insecure_noauth_bind",
        default=False,
        help="Allow the unauthenticated (no Keystone) mode to listen on an address other than "
        "loopback. Anyone who can reach the port acts as administrator.",
    ),
]

_limits = [
    cfg.IntOpt(
        "limit_param_default", default=25, min=1, help="Default page size of list requests."
    ),
    cfg.IntOpt("api_limit_max", default=1000, min=1, help="Largest page size a list returns."),
    cfg.IntOpt(
        "image_member_quota",
        default=128,
        help="Most members an image may have. A negative value means unlimited.",
    ),
    cfg.IntOpt(
        "image_property_quota",
        default=128,
        help="Most additional properties an image may have. A negative value means unlimited.",
    ),
    cfg.IntOpt(
        "image_tag_quota",
        default=128,
        help="Most tags an image may have. A negative value means unlimited.",
    ),
    cfg.IntOpt(
        "image_location_quota",
        default=10,
        help="Most locations an image may have. A negative value means unlimited.",
    ),
    cfg.IntOpt(
        "image_size_cap",
        default=1099511627776,
        min=1,
        max=9223372036854775808,
        help="Largest image, in bytes, that may be uploaded, staged or imported.",
    ),
    cfg.StrOpt(
        "user_storage_quota",
        default="0",
        help="Most image data one owner may store across all stores, as an integer with an "
        "optional unit B, KB, MB, GB or TB (binary multiples). 0 means unlimited.",
    ),
]

_images = [
    cfg.BoolOpt(
        "show_image_direct_url",
        default=False,
        help="Show the image's best location as 'direct_url'. May reveal store layout.",
    ),
    cfg.BoolOpt(
        "show_multiple_locations",
        default=False,
        help="Show and allow changing the image's 'locations' list. May reveal credentials of "
        "external stores; keep it for internal endpoints.",
    ),
    cfg.StrOpt(
        "hashing_algorithm",
        default="sha512",
        mutable=True,
        help="hashlib algorithm used for os_hash_value; its hexdigest must fit 128 characters. "
        "A change takes effect on SIGHUP; uploads in flight keep the algorithm they started "
        "with.",
    ),
    cfg.BoolOpt(
        "do_secure_hash",
        default=True,
        help="Whether a location added with POST /v2/images/{id}/locations (Images API 2.17) "
        "has its data read by a glimpse-worker to compute checksum and os_hash_value (and "
        "check the validation_data given with it). When false, the hash given in "
        "validation_data is recorded unchecked, and none is computed.",
    ),
    cfg.IntOpt(
        "http_retries",
        default=3,
        min=0,
        help="Times a glimpse-worker tries to read the data of a location added with POST "
        "/v2/images/{id}/locations to hash it before giving up (always at least once).",
    ),
    cfg.BoolOpt(
        "owner_is_tenant",
        default=True,
        help="When true an image belongs to the caller's project; when false, to the caller's "
        "user.",
    ),
    cfg.StrOpt("admin_role", default="admin", help="Role that makes a caller an administrator."),
    cfg.BoolOpt(
        "allow_anonymous_access",
        default=False,
        help="With Keystone, let unauthenticated requests read public data instead of "
        "refusing them with 401.",
    ),
    cfg.BoolOpt(
        "allow_additional_image_properties",
        default=True,
        help="Allow images to carry properties beyond those in the image schema.",
    ),
    GlanceListOpt(
        "enabled_import_methods",
        default=["glance-direct", "web-download"],
        help="Import methods offered by POST /v2/images/{id}/import.",
    ),
    cfg.StrOpt(
        "node_staging_uri",
        help="file:// URI (absolute path) of the staging folder for imports; it must be "
        "shared by every node that stages or imports. [os_glance_staging_store] "
        "filesystem_store_datadir says the same in Glance's newer form; to stage in Swift "
        "or S3 instead, set [os_glance_staging_store] store_type and leave this unset. "
        "Defaults to staging/ in the data folder.",
    ),
    cfg.StrOpt(
        "property_protection_file",
        help="File with property protection rules. Unset means properties are not protected.",
    ),
    cfg.StrOpt(
        "property_protection_rule_format",
        default="roles",
        choices=["roles", "policies"],
        help="Whether property protection rules name roles or policy rules.",
    ),
    cfg.BoolOpt(
        "delayed_delete",
        default=False,
        help="Keep the data of deleted images until the scrubber removes it.",
    ),
    cfg.IntOpt(
        "scrub_time",
        default=0,
        min=0,
        help="Seconds a deleted image's data is kept before the scrubber may remove it.",
    ),
    cfg.IntOpt("scrub_pool_size", default=1, min=1, help="Images the scrubber removes at once."),
    cfg.IntOpt("wakeup_time", default=300, min=0, help="Seconds between scrubber daemon passes."),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [(None, _server + _limits + _images)]
