"""Notifications: Glance's events about images, members, tasks and metadefs.

:mod:`~glimpse.notifications.notifier` sends them (configured by
``[oslo_messaging_notifications]``, never holding up a request);
:mod:`~glimpse.notifications.payloads` builds their payloads in Glance's shapes.
Service functions send each event explicitly, after their transaction commits.
"""

from glimpse.notifications.notifier import NotificationConfigError, Notifier

__all__ = ["NotificationConfigError", "Notifier"]
