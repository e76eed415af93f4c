"""Asset definitions: per-symbol daily assets and the universe coverage report."""

from ghtrader_assets.assets.coverage import build_coverage_report_asset
from ghtrader_assets.assets.symbol import SymbolAssetKeys, build_symbol_assets

__all__ = ["SymbolAssetKeys", "build_coverage_report_asset", "build_symbol_assets"]
