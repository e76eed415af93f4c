"""QuestDB store (production): WAL tables with dedup, ILP/HTTP or QWP writes, PGWire reads.

Select it with ``GHTRADER_STORE=questdb`` and ``GHTRADER_QDB_*`` settings; see
:mod:`.store` for the write/replace guarantees and :mod:`.ddl` for the table layout.
"""

from ghtrader_assets.stores.questdb.ddl import SchemaDriftError
from ghtrader_assets.stores.questdb.settings import QuestDBSettings, QuestDBSettingsError
from ghtrader_assets.stores.questdb.store import QuestDBStore

__all__ = ["QuestDBSettings", "QuestDBSettingsError", "QuestDBStore", "SchemaDriftError"]
