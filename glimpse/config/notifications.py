"""Options of notifications: Glance's own, and the oslo.messaging ones Glimpse reads.

``driver``, ``transport_url``, ``topics`` and ``retry`` of
``[oslo_messaging_notifications]`` and ``[DEFAULT] transport_url`` keep
oslo.messaging's names, meanings and defaults. They are declared here rather than
taken from oslo.messaging so that the library (slow to import) is loaded only
when a messaging driver is configured; oslo.messaging then reads its other
options (``[oslo_messaging_rabbit]``, ``[DEFAULT] control_exchange``, ...) from
the same configuration files.
"""

from __future__ import annotations

from oslo_config import cfg

GROUP = "oslo_messaging_notifications"

_default = [
    cfg.StrOpt(
        "transport_url",
        secret=True,
        help="The messaging server to connect to, as an oslo.messaging transport URL "
        "(rabbit://user:password@host:5672/vhost). Notifications use it unless "
        "[oslo_messaging_notifications] transport_url is set.",
    ),
    cfg.StrOpt(
        "default_publisher_id",
        default="image.localhost",
        help="publisher_id of the notifications this service sends, typically image.<hostname>.",
    ),
    cfg.ListOpt(
        "disabled_notifications",
        default=[],
        help="Notifications not to send: event types (image.create, task.success) or groups "
        "(image, image.member, task, metadef_namespace, metadef_object, metadef_property, "
        "metadef_resource_type, metadef_tag).",
    ),
    cfg.IntOpt(
        "notification_queue_size",
        default=1000,
        min=1,
        help="Most notifications waiting to be sent. They are sent by a background thread, "
        "so a slow or unreachable messaging server never holds up a request; when the "
        "queue is full, further notifications are dropped (and the drop logged).",
    ),
    cfg.FloatOpt(
        "notification_flush_timeout",
        default=5.0,
        min=0,
        help="Seconds a stopping process waits for its queued notifications to be sent.",
    ),
]

_notifications = [
    cfg.MultiStrOpt(
        "driver",
        default=[],
        deprecated_opts=[cfg.DeprecatedOpt("notification_driver", group="DEFAULT")],
        help="The driver(s) sending notifications: noop (none, the default), log (to the "
        "oslo.messaging.notification.<event_type> logger), messagingv2 or messaging (to the "
        "messaging server), or any other oslo.messaging notification driver.",
    ),
    cfg.StrOpt(
        "transport_url",
        secret=True,
        deprecated_opts=[cfg.DeprecatedOpt("notification_transport_url", group="DEFAULT")],
        help="The messaging server for notifications, when it is not [DEFAULT] transport_url.",
    ),
    cfg.ListOpt(
        "topics",
        default=["notifications"],
        deprecated_opts=[
            cfg.DeprecatedOpt("topics", group="rpc_notifier2"),
            cfg.DeprecatedOpt("notification_topics", group="DEFAULT"),
        ],
        help="AMQP topics notifications are sent to; each priority goes to "
        "<topic>.<priority> (notifications.info, notifications.error).",
    ),
    cfg.IntOpt(
        "retry",
        default=-1,
        help="How often to retry sending a notification when the messaging server cannot be "
        "reached: 0 never, -1 without end (the queue keeps filling meanwhile).",
    ),
]

OPTS: list[tuple[str | None, list[cfg.Opt]]] = [(None, _default), (GROUP, _notifications)]
