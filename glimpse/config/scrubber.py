"""Options of ``glimpse-scrubber`` (``[DEFAULT]`` group).

``delayed_delete``, ``scrub_time``, ``scrub_pool_size`` and ``wakeup_time`` live in
:mod:`glimpse.config.api`: the API reads ``delayed_delete`` too, and one option is
declared once. The command-line switches (``--daemon``, ``--restore``, ``--dry-run``)
belong to the command, :mod:`glimpse.cmd.scrubber`.
"""

from __future__ import annotations

from oslo_config import cfg

_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "scrubber_pid_file",
        help="File the glimpse-scrubber daemon writes its process id to while it runs. "
        "'glimpse-scrubber --restore' refuses to run while the process named there is alive, "
        "and a second daemon refuses to start. Defaults to glimpse-scrubber.pid in the data "
        "folder; Glance used /var/run/glance/glance-scrubber.pid.",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [(None, _opts)]
