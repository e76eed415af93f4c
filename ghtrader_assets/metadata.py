"""Helpers that turn our tables into Dagster metadata the UI renders."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ghtrader_assets.schema import TableSpec

if TYPE_CHECKING:
    from dagster import MetadataValue, TableSchema

_DTYPE_NAMES = {
    "str": "string",
    "string[pyarrow]": "string",
    "string": "string",
    "float64": "float64",
    "int64": "int64",
    "datetime64[ns, UTC]": "timestamp[ns, UTC]",
}


def column_schema(spec: TableSpec) -> TableSchema:
    """The table's columns as a Dagster ``TableSchema`` (the asset page's *Columns*): name,
    type, the pandera field's description (meaning and unit), nullability, value checks,
    and whether the column is one of the keys that identify a row."""
    # Dagster is imported here, not at module level: the CLI's terminal tables
    # (``markdown_table``) must not pay its import time.
    from dagster import TableColumn, TableColumnConstraints, TableSchema

    return TableSchema(
        columns=[
            TableColumn(
                name=name,
                type=_DTYPE_NAMES.get(str(col.dtype), str(col.dtype)),
                description=_column_description(spec, name, col.description),
                constraints=TableColumnConstraints(
                    nullable=bool(col.nullable),
                    other=[str(c.name) for c in col.checks if getattr(c, "name", None)],
                ),
            )
            for name, col in spec.schema.columns.items()
        ]
    )


def _column_description(spec: TableSpec, name: str, description: str | None) -> str | None:
    key = f"Row key ({', '.join(spec.dedup_keys)})." if name in spec.dedup_keys else ""
    return " ".join(p for p in (description, key) if p) or None


def sample_table(sample: pd.DataFrame, max_rows: int = 10) -> MetadataValue:
    """A short Markdown table of offending rows for a failed check."""
    from dagster import MetadataValue

    head = sample.head(max_rows).copy()
    for col in head.columns:
        if isinstance(head[col].dtype, pd.DatetimeTZDtype):  # exchange-local, like the checks
            head[col] = head[col].dt.tz_convert("Asia/Shanghai").astype(str)
        elif pd.api.types.is_datetime64_any_dtype(head[col]):
            head[col] = head[col].astype(str)
    return MetadataValue.md(markdown_table(head))


def markdown_table(frame: pd.DataFrame, *, for_ui: bool = True) -> str:
    """A GitHub-style Markdown table without extra dependencies (tabulate is optional)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, for_ui) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: object, for_ui: bool) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.6g}"
    text = str(value).replace("|", "\\|")
    # In the UI, symbols such as KQ.m@SHFE.cu would otherwise render as e-mail links.
    return f"`{text}`" if for_ui and "@" in text else text
