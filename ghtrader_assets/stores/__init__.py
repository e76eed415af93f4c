"""Stores behind one interface: embedded Parquet (default, no server) and QuestDB (production)."""

from ghtrader_assets.stores.base import StoreError, TickStore, WriteStats

__all__ = ["StoreError", "TickStore", "WriteStats"]
