"""Configuration: every option is declared once, with help text, in one module per group.

Option names and sections are Glance's, so that an operator's ``glance-api.conf``
carries over. :func:`list_opts` feeds ``oslo-config-generator`` (namespace
``glimpse``), which writes the sample configuration.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from oslo_config import cfg

from glimpse.config import (
    api,
    backends,
    database,
    image_format,
    import_filtering,
    import_plugins,
    keystone,
    log,
    middleware,
    notifications,
    paste,
    policy,
    scrubber,
    staging,
    store,
    task,
    worker,
)

_GROUP_MODULES = (
    api,
    backends,
    database,
    image_format,
    import_filtering,
    import_plugins,
    keystone,
    log,
    middleware,
    notifications,
    paste,
    policy,
    scrubber,
    staging,
    store,
    task,
    worker,
)


def register(conf: cfg.ConfigOpts) -> None:
    """Declare every Glimpse option on ``conf`` (idempotent)."""
    policy.set_defaults(conf)
    for module in _GROUP_MODULES:
        for group, opts in module.OPTS:
            conf.register_opts(opts, group=group)
            if group is None:
                for opt in opts:
                    if opt.name in conf and False:  # pragma: no cover - registration is idempotent
                        pass


def list_opts() -> list[tuple[str | cfg.OptGroup | None, list[cfg.Opt]]]:
    """Every option, grouped, for oslo-config-generator.

    Store options are registered only for the stores a configuration uses; here they
    all appear, the multi-store ones under one placeholder group per store type.
    """
    merged: dict[str | None, list[cfg.Opt]] = {}
    for module in _GROUP_MODULES:
        for group, opts in module.OPTS:
            merged.setdefault(group, []).extend(opts)
    placeholders: list[tuple[str | cfg.OptGroup | None, list[cfg.Opt]]] = []
    for sample_group, opts in backends.sample_groups():
        if isinstance(sample_group, str):
            merged.setdefault(sample_group, []).extend(opts)
        else:
            placeholders.append((sample_group, opts))
    listed: list[tuple[str | cfg.OptGroup | None, list[cfg.Opt]]] = [
        (group, list(opts)) for group, opts in merged.items()
    ]
    return listed + placeholders


def new_conf(args: Sequence[str] = (), config_files: Iterable[str] | None = None) -> cfg.ConfigOpts:
    """Build a fresh, parsed configuration object.

    Tests and commands use their own object rather than a process-global one, so
    several differently configured services can live in one process.
    """
    conf = cfg.ConfigOpts()
    register(conf)
    parse(conf, args, config_files)
    return conf


def parse(
    conf: cfg.ConfigOpts, args: Sequence[str], config_files: Iterable[str] | None = None
) -> None:
    """Parse ``args`` into ``conf``: every Glimpse command reads the same files.

    Only the files named by ``--config-file``/``--config-dir`` (or ``config_files``)
    are read, never ones oslo.config would look for by itself (``~/.glimpse/``,
    ``/etc/glimpse/glimpse.conf``, ``glimpse.conf.d``): a file left there must not
    point ``glimpse-manage`` or the scrubber at another database than the API's.
    """
    conf(
        list(args),
        project="glimpse",
        default_config_files=list(config_files) if config_files is not None else [],
        default_config_dirs=[],
    )


def data_dir(conf: cfg.ConfigOpts) -> str:
    """The one folder the embedded default keeps everything in."""
    path = (
        conf.data_dir
        or os.environ.get("GLIMPSE_DATA_DIR")
        or os.path.join(
            os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "glimpse"
        )
    )
    return os.path.abspath(path)


def database_url(conf: cfg.ConfigOpts) -> str:
    """``[database] connection``, or SQLite in the data folder."""
    if conf.database.connection:
        return str(conf.database.connection)
    return "sqlite:///" + os.path.join(data_dir(conf), "glimpse.sqlite")


def filesystem_datadir(conf: cfg.ConfigOpts) -> str:
    """``[glance_store] filesystem_store_datadir``, or ``images/`` in the data folder."""
    return str(conf.glance_store.filesystem_store_datadir or os.path.join(data_dir(conf), "images"))


def staging_dir(conf: cfg.ConfigOpts) -> str:
    """The folder of a filesystem staging area.

    ``[os_glance_staging_store] filesystem_store_datadir``, else ``node_staging_uri`` (a
    ``file://`` URI), else staging/ in the data folder. Raises
    :class:`~glimpse.config.backends.StoreConfigError` when they are malformed or disagree.
    """
    group = conf[staging.GROUP]
    uri = conf.node_staging_uri
    from_uri = None
    if uri:
        if not uri.startswith("file://") or not uri[len("file://") :].startswith("/"):
            raise backends.StoreConfigError(
                f"node_staging_uri must be a file:// URI with an absolute path, not {uri!r}."
            )
        from_uri = os.path.normpath(uri[len("file://") :])
    datadir = group.filesystem_store_datadir
    if datadir:
        if not os.path.isabs(datadir):
            raise backends.StoreConfigError(
                f"[{staging.GROUP}] filesystem_store_datadir must be an absolute path, "
                f"not {datadir!r}."
            )
        datadir = os.path.normpath(datadir)
        if from_uri is not None and from_uri != datadir:
            raise backends.StoreConfigError(
                f"node_staging_uri ({uri}) and [{staging.GROUP}] filesystem_store_datadir "
                f"({datadir}) name different staging folders; keep one of them."
            )
        return str(datadir)
    return from_uri or os.path.join(data_dir(conf), "staging")


def work_dir(conf: cfg.ConfigOpts) -> str:
    """``[task] work_dir``, or work/ in the data folder."""
    return os.path.abspath(conf.task.work_dir or os.path.join(data_dir(conf), "work"))
