"""The collaborators every service function receives explicitly."""

from __future__ import annotations

import dataclasses

from oslo_config import cfg

from glimpse import config
from glimpse.db.engine import Database
from glimpse.notifications import Notifier
from glimpse.policy import Policy
from glimpse.schemas.image import ImageSchema
from glimpse.services.property_protection import PropertyProtection
from glimpse.store.registry import Stores


@dataclasses.dataclass
class Runtime:
    """Configuration and the long-lived objects built from it, for one process."""

    conf: cfg.ConfigOpts
    db: Database
    policy: Policy
    image_schema: ImageSchema
    stores: Stores
    property_protection: PropertyProtection
    notifier: Notifier

    @classmethod
    def build(cls, conf: cfg.ConfigOpts) -> Runtime:
        policy = Policy(conf)
        # Before anything holds resources: both refuse a bad configuration.
        property_protection = PropertyProtection.from_conf(conf, policy)
        notifier = Notifier.from_conf(conf)
        db = Database(
            config.database_url(conf),
            pool_size=conf.database.max_pool_size,
            max_overflow=conf.database.max_overflow,
            recycle=conf.database.connection_recycle_time,
        )
        return cls(
            conf=conf,
            db=db,
            policy=policy,
            image_schema=ImageSchema(conf),
            stores=Stores.from_conf(conf),
            property_protection=property_protection,
            notifier=notifier,
        )

    def close(self) -> None:
        self.notifier.close()
        self.db.dispose()
