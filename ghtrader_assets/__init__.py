"""ghtrader-assets: Chinese-futures L5 tick data as Dagster software-defined assets."""

__version__ = "0.1.0"
