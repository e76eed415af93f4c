"""An in-memory stand-in for QuestDB, just large enough for the statements the QuestDB store
issues, so the store's write/replace/read logic runs end to end without a server.

It keeps QuestDB's behaviour where the store depends on it: tables are created from the DDL
text; ILP/QWP writes upsert on the table's ``DEDUP UPSERT KEYS`` (the whole row is replaced);
``TIMESTAMP`` columns keep microseconds; ``UPDATE`` / ``INSERT`` / ``ALTER TABLE ADD COLUMN
IF NOT EXISTS`` / ``count()`` / grouped ``min``/``max`` (NULLs skipped) / ``count()`` /
``sum`` (of a column, or of ``CASE WHEN "a" IS NULL THEN "b" END``; all-NULL gives NULL) /
``LATEST ON`` / ``ORDER BY "col" [DESC] LIMIT n`` / ``GROUP BY`` one or more columns /
``table_columns()`` / ``wal_tables()`` / ``CREATE [OR REPLACE] VIEW [IF NOT EXISTS]`` (a
column list over one table, filtered by ``"col" != 'literal'``) and ``DROP VIEW`` work on
WHERE clauses made of ``"col" op %s`` terms joined by AND. Bind parameters are consumed in
order, so a statement whose parameters are in the wrong order gives wrong answers here too.
Anything else raises, so an unexpected statement shape fails the test instead of passing.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

from ghtrader_assets.stores.questdb.queries import Query

_COL_RE = re.compile(r'^\s*"(\w+)" (\w+)')
_TERM_RE = re.compile(r'^"(\w+)" (=|!=|>=|<) %s$')
_IN_RE = re.compile(r'^"(\w+)" IN \(((?:%s, )*%s)\)$')


class FakeTable:
    def __init__(self, columns: list[tuple[str, str]], ts: str, keys: list[str]) -> None:
        self.columns = columns
        self.ts = ts
        self.keys = keys
        self.rows = pd.DataFrame({name: pd.Series(dtype=object) for name, _ in columns})

    def types(self) -> dict[str, str]:
        return dict(self.columns)


class FakeQuestDB:
    """Implements the store's SqlRunner protocol and hands out fake senders / QWP handles."""

    def __init__(self, *, wal_lag: bool = False) -> None:
        #: With ``wal_lag`` writes (rows, UPDATEs, INSERTs) are committed but not applied:
        #: each ``wal_tables()`` poll applies one queued transaction, as a server applying
        #: the WAL behind the writers would. Without it every write applies at once.
        self.wal_lag = wal_lag
        self.queued: list[Any] = []
        self.applied = 0
        self.tables: dict[str, FakeTable] = {}
        self.views: dict[str, tuple[str, list[str], str, str]] = {}
        self.statements: list[str] = []
        self.sequencer = 0

    # -- writes (ILP and QWP) ----------------------------------------------------------------

    def _commit(self, apply: Any) -> None:
        self.sequencer += 1
        if self.wal_lag:
            self.queued.append(apply)
        else:
            apply()
            self.applied = self.sequencer

    def apply_one(self) -> None:
        if self.queued:
            self.queued.pop(0)()
            self.applied += 1

    def upsert(self, table: str, df: pd.DataFrame, at: str) -> None:
        df = df.copy()
        self._commit(lambda: self._upsert(table, df))

    def _upsert(self, table: str, df: pd.DataFrame) -> None:
        t = self.tables[table]  # the store pre-creates tables; auto-create would be a bug
        new = pd.DataFrame(index=range(len(df)))
        for name, qtype in t.columns:
            if name in df.columns:
                values = df[name].reset_index(drop=True)
                if qtype == "TIMESTAMP":
                    values = pd.to_datetime(values, utc=True).dt.floor("us")
                new[name] = values.astype(object).where(values.notna(), None)
            else:
                new[name] = None
        combined = pd.concat([t.rows, new], ignore_index=True)
        combined = combined.drop_duplicates(subset=t.keys, keep="last")
        t.rows = combined.sort_values(t.ts, kind="mergesort").reset_index(drop=True)

    def sender(self) -> FakeSender:
        return FakeSender(self)

    def qwp(self) -> FakeQwpHandle:
        return FakeQwpHandle(self)

    # -- SqlRunner ---------------------------------------------------------------------------

    def execute_ddl(self, sql: str) -> None:
        self.statements.append(sql)
        m = re.match(
            r'CREATE TABLE IF NOT EXISTS "(\w+)" \(\n(.*)\n\) TIMESTAMP\("(\w+)"\)', sql, re.S
        )
        if m:
            name, body, ts = m.groups()
            keys = re.findall(r'"(\w+)"', re.search(r"UPSERT KEYS\(([^)]*)\)", sql).group(1))
            cols = [_COL_RE.match(line).groups() for line in body.split(",\n")]
            self.tables.setdefault(name, FakeTable(cols, ts, keys))
            return
        m = re.fullmatch(r'ALTER TABLE "(\w+)" ADD COLUMN IF NOT EXISTS "(\w+)" (\w+)', sql)
        if m:
            table = self.tables[m.group(1)]
            if m.group(2) not in table.types():
                table.columns.append((m.group(2), m.group(3)))
                table.rows[m.group(2)] = None
            self._commit(lambda: None)
            return
        m = re.fullmatch(
            r'CREATE (OR REPLACE VIEW|VIEW IF NOT EXISTS) "(\w+)" AS \(SELECT (.*) '
            r'FROM "(\w+)" WHERE "(\w+)" != \'(\w+)\'\)',
            sql,
        )
        if m:
            head, name, select, base, col, value = m.groups()
            assert base in self.tables, f"view {name} over missing table {base}"
            if head.startswith("OR REPLACE") or name not in self.views:
                self.views[name] = (base, re.findall(r'"(\w+)"', select), col, value)
            return
        if sql.startswith(("DROP TABLE IF EXISTS ", "DROP VIEW IF EXISTS ")):
            self.execute(Query(sql))
            return
        raise AssertionError(f"fake QuestDB does not understand DDL: {sql}")

    def view_rows(self, name: str) -> pd.DataFrame:
        """What ``SELECT * FROM <view>`` returns."""
        base, cols, col, value = self.views[name]
        rows = self.tables[base].rows
        keep = (rows[col] != value).fillna(False).astype(bool)
        return rows.loc[keep, cols].reset_index(drop=True)

    def execute(self, query: Query) -> None:
        sql, params = _normalise(query)
        self.statements.append(sql)
        if m := re.match(r'DROP TABLE IF EXISTS "(\w+)"$', sql):
            self.tables.pop(m.group(1), None)
            return
        if m := re.match(r'DROP VIEW IF EXISTS "(\w+)"$', sql):
            self.views.pop(m.group(1), None)
            return
        if m := re.match(r'UPDATE "(\w+)" SET "(\w+)" = \'(\w+)\' WHERE (.*)$', sql):
            t = self.tables[m.group(1)]
            col, value, where = m.group(2), m.group(3), m.group(4)

            def update() -> None:
                mask = _where(t.rows, where, params)
                t.rows.loc[mask, col] = value

            self._commit(update)
            return
        if m := re.match(r'INSERT INTO "(\w+)" \((.*)\) VALUES \((.*)\)$', sql):
            cols = re.findall(r'"(\w+)"', m.group(2))
            t = self.tables[m.group(1)]
            self.upsert(m.group(1), pd.DataFrame([dict(zip(cols, params, strict=True))]), t.ts)
            return
        raise AssertionError(f"fake QuestDB does not understand: {sql}")

    def fetch(self, query: Query) -> list[tuple[Any, ...]]:
        sql, params = _normalise(query)
        self.statements.append(sql)
        if m := re.search(r"FROM table_columns\('(\w+)'\)", sql):
            t = self.tables[m.group(1)]
            return [(n, q, n == t.ts, n in t.keys) for n, q in t.columns]
        if "FROM wal_tables()" in sql:
            if params[0] not in self.tables:
                return []
            status = [(False, self.applied, self.sequencer, None, None)]
            self.apply_one()  # the server makes progress between two polls
            return status
        frame = self._select(sql, params)
        return [tuple(_pg_value(v) for v in row) for row in frame.itertuples(index=False)]

    def fetch_df(self, query: Query) -> pd.DataFrame:
        rows = self.fetch(query)
        sql, _ = _normalise(query)
        names = re.findall(r'"(\w+)"', sql.split(" FROM ")[0])
        return pd.DataFrame.from_records(rows, columns=names)

    def close(self) -> None:
        pass

    # -- SELECT ------------------------------------------------------------------------------

    def _select(self, sql: str, params: tuple[Any, ...]) -> pd.DataFrame:
        m = re.match(
            r"SELECT (.*) FROM \"(\w+)\"(?: WHERE (.*?))?(?: (GROUP BY|LATEST ON|ORDER BY) (.*))?$",
            sql,
        )
        if not m:
            raise AssertionError(f"fake QuestDB does not understand: {sql}")
        select, table, where, tail_kind, tail = m.groups()
        rows = self.view_rows(table) if table in self.views else self.tables[table].rows
        if where:
            rows = rows[_where(rows, where, params)]
        if tail_kind == "LATEST ON":
            ts, part = re.fullmatch(r'"(\w+)" PARTITION BY "(\w+)"', tail).groups()
            rows = rows.sort_values(ts, kind="mergesort").groupby(part, sort=False).tail(1)
        if tail_kind == "ORDER BY":
            col, desc, limit = re.fullmatch(r'"(\w+)"( DESC)? LIMIT (\d+)', tail).groups()
            rows = rows.sort_values(col, ascending=not desc, kind="mergesort").head(int(limit))
        if select == "count()":
            return pd.DataFrame({"count": [len(rows)]})
        if tail_kind == "GROUP BY":
            keys = [re.fullmatch(r'"(\w+)"', k).group(1) for k in tail.split(", ")]
            out = []
            for value, group in rows.groupby(keys, sort=False, dropna=False):
                values = dict(zip(keys, value, strict=True))
                record = []
                for item in select.split(", "):
                    if (km := re.fullmatch(r'"(\w+)"', item)) and km.group(1) in values:
                        record.append(values[km.group(1)])
                    elif item.startswith("count()"):
                        record.append(len(group))
                    elif am := re.match(r'(min|max|sum)\("(\w+)"\)', item):
                        record.append(_aggregate(am.group(1), group[am.group(2)]))
                    elif am := re.match(r'sum\(CASE WHEN "(\w+)" IS NULL THEN "(\w+)" END\)', item):
                        picked = group.loc[group[am.group(1)].isna(), am.group(2)]
                        record.append(_aggregate("sum", picked))
                    else:
                        raise AssertionError(f"fake QuestDB: unknown aggregate {item}")
                out.append(record)
            return pd.DataFrame(out)
        names = re.findall(r'"(\w+)"', select)
        if len(names) != len(select.split(", ")):
            raise AssertionError(f"fake QuestDB: unsupported select list {select}")
        return rows[names]


class FakeSender:
    """``questdb.Sender`` over ILP/HTTP: rows buffer until a (transactional) flush."""

    def __init__(self, db: FakeQuestDB) -> None:
        self.db = db
        self.buffer: list[tuple[str, pd.DataFrame, str]] = []
        self.fail_at: int | None = None
        self.flushes = 0

    def establish(self) -> None:
        pass

    def dataframe(self, df: pd.DataFrame, *, table_name: str, symbols: Any, at: str) -> None:
        self.buffer.append((table_name, df.copy(), at))

    def flush(self, buffer: Any = None, clear: bool = True, transactional: bool = False) -> None:
        self.flushes += 1
        batch, self.buffer = self.buffer, []
        if self.fail_at == self.flushes:
            from questdb import QuestDBError, QuestDBErrorCode

            raise QuestDBError(QuestDBErrorCode.ServerFlushError, "injected: disk on fire")
        assert not transactional or len({t for t, _, _ in batch}) <= 1
        for table, df, at in batch:
            self.db.upsert(table, df, at)

    def close(self, flush: bool = True) -> None:
        pass


class FakeQwpHandle:
    """``questdb.connect(...)`` handle: columnar writes and ``$n``-bound queries."""

    def __init__(self, db: FakeQuestDB) -> None:
        self.db = db

    def dataframe(
        self,
        df: pd.DataFrame,
        *,
        table_name: str,
        symbols: Any,
        at: str,
        max_rows_per_batch: int = 16384,
    ) -> None:
        self.db.upsert(table_name, df, at)

    def query(self, sql: str, binds: list[Any]) -> _Result:
        assert "%s" not in sql
        frame = self.db._select(re.sub(r"\$\d+", "%s", sql), tuple(binds))
        out = frame.copy()
        for name in out.columns:  # QWP gives Categorical symbols and datetime64 columns
            if out[name].map(lambda v: isinstance(v, str)).any():
                out[name] = pd.Categorical(out[name])
        return _Result(out)

    def close(self, timeout: float | None = None) -> None:
        pass


class _Result:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def to_pandas(self) -> pd.DataFrame:
        return self.frame.reset_index(drop=True)


def _aggregate(func: str, column: pd.Series) -> Any:
    """QuestDB's min/max/sum: NULLs skipped, NULL when nothing is left."""
    values = column.dropna()
    if values.empty:
        return None
    return {"min": values.min, "max": values.max, "sum": values.sum}[func]()


def _normalise(query: Query) -> tuple[str, tuple[Any, ...]]:
    return " ".join(query.sql.split()), query.params


def _where(rows: pd.DataFrame, where: str, params: tuple[Any, ...]) -> pd.Series:
    mask = pd.Series(True, index=rows.index)
    i = 0
    for term in where.split(" AND "):
        if m := _IN_RE.match(term):
            n = m.group(2).count("%s")
            mask &= rows[m.group(1)].isin(list(params[i : i + n]))
            i += n
            continue
        m = _TERM_RE.match(term)
        if not m:
            raise AssertionError(f"fake QuestDB: unsupported WHERE term {term!r}")
        col, op, value = m.group(1), m.group(2), params[i]
        i += 1
        if isinstance(value, dt.datetime):
            value = pd.Timestamp(value)
        column = rows[col]
        mask &= (
            {
                "=": column == value,
                "!=": column != value,
                ">=": column >= value,
                "<": column < value,
            }[op]
            .fillna(False)
            .astype(bool)
        )
    if i != len(params):
        raise AssertionError(f"fake QuestDB: {len(params)} params for {i} placeholders")
    return mask


def _pg_value(value: Any) -> Any:
    """What psycopg would hand back: naive UTC datetimes, Python scalars, None for NaN."""
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").tz_localize(None).to_pydatetime() if value.tzinfo else value
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
