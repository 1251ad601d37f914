"""Options of the ``[os_glance_staging_store]`` group: where imports are staged.

Glance (Train and later) configures its staging area as the reserved store
``os_glance_staging_store``, a filesystem store with its own
``filesystem_store_datadir``. Glimpse keeps that group and adds ``store_type``, so the
staging area can also be a Swift container or an S3 bucket that every node reaches;
the group then takes that driver's options (``swift_store_*`` or ``s3_store_*``),
registered by :func:`glimpse.config.backends.register_store_options` once the
configuration says which driver is in use.

``node_staging_uri`` (Rocky's ``file://`` form, in ``[DEFAULT]``) still names the
folder of a filesystem staging area.
"""

from __future__ import annotations

from oslo_config import cfg

#: The reserved store id of the staging area, as in Glance.
GROUP = "os_glance_staging_store"
#: Store types the staging area may be: writable drivers that address data by image id.
STAGING_TYPES = ("file", "swift", "s3")
_DESCRIPTIONS = {
    "file": "a folder (filesystem_store_datadir or node_staging_uri)",
    "swift": "a Swift container (swift_store_* options of this group)",
    "s3": "an S3 bucket (s3_store_* options of this group)",
}

_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "store_type",
        default="file",
        choices=[(name, _DESCRIPTIONS[name]) for name in STAGING_TYPES],
        help="Where glance-direct data is staged and web-download and copy-image fetch to "
        "before a worker imports it (a Glimpse option; Glance's staging is always a "
        "folder). 'file': a folder, filesystem_store_datadir below or node_staging_uri, "
        "which must be shared by every node that stages or imports. 'swift' or 's3': a "
        "container or bucket that every node reaches, configured by the swift_store_* or "
        "s3_store_* options in this group; give it a container or bucket of its own, not "
        "one of an image store. Staged objects carry no ACL and stay private to the "
        "service's account. With an object store, a worker running a plugin that reads "
        "the data (image_conversion) copies the staged object to [task] work_dir first.",
    ),
    cfg.StrOpt(
        "filesystem_store_datadir",
        help="With store_type = file: the staging folder, shared by every node that stages "
        "or imports. Defaults to node_staging_uri, else staging/ in the data folder.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [(GROUP, _opts)]
