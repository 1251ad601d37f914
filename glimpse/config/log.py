"""Logging options of the ``[DEFAULT]`` group, with oslo.log's names."""

from __future__ import annotations

from oslo_config import cfg

_opts = [
    cfg.BoolOpt(
        "debug",
        default=False,
        mutable=True,
        help="Log at DEBUG level instead of INFO. A change takes effect on SIGHUP.",
    ),
    cfg.StrOpt(
        "log_file",
        help="File every log line is appended to; unset logs to standard error. The file is "
        "reopened when it is moved or removed, so logrotate needs no copytruncate.",
    ),
    cfg.StrOpt(
        "log_dir",
        help="Folder a relative log_file is taken in.",
    ),
    cfg.BoolOpt(
        "use_json",
        default=False,
        help="Write each log line as one JSON object (time, level, logger, message, process, "
        "request_id, user_id, project_id, task_id, and the fields of access lines) for log "
        "shippers, instead of text.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [(None, _opts)]
