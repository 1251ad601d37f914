"""The collaborators every service function receives explicitly."""

from __future__ import annotations

import dataclasses

from oslo_config import cfg

from glimpse import config
from glimpse.db.engine import Database
from glimpse.policy import Policy
from glimpse.schemas.image import ImageSchema
from glimpse.store.registry import Stores


@dataclasses.dataclass
class Runtime:
    """Configuration and the long-lived objects built from it, for one process."""

    conf: cfg.ConfigOpts
    db: Database
    policy: Policy
    image_schema: ImageSchema
    stores: Stores

    @classmethod
    def build(cls, conf: cfg.ConfigOpts) -> Runtime:
        db = Database(
            config.database_url(conf),
            pool_size=conf.database.max_pool_size,
            max_overflow=conf.database.max_overflow,
            recycle=conf.database.connection_recycle_time,
        )
        return cls(
            conf=conf,
            db=db,
            policy=Policy(conf),
            image_schema=ImageSchema(conf),
            stores=Stores.from_conf(conf),
        )

    def close(self) -> None:
        self.db.dispose()
