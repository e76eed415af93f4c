"""Offline ticks from files in TqSdk ``DataDownloader`` format, plus a writer for that format.

Why: users who already downloaded ticks with TqSdk's ``DataDownloader`` (or exported them
from this project) can ingest them without an account, and tests can feed exact bytes.

Directory layout under ``root``::

    roll_schedule.csv                  trading_day,symbol,underlying   (one row per symbol-day)
    <underlying>/<trading_day>.csv     ticks of one contract for one trading day (preferred)
    <underlying>.csv                   or: ticks of one contract over many days

e.g. ``SHFE.cu2602/2026-01-05.csv``. A per-day file must hold only ticks of its trading day
(a tick of another day is an error: the file is misnamed); a many-day file is filtered to the
requested day with :func:`ghtrader_assets.calendar.trading_days_of` (18:00 local starts the
next trading day). A day outside a many-day file's range raises :class:`NoDataError`; a day
inside it without ticks gives an empty frame.

Tick file format, as written by ``tqsdk.tools.DataDownloader`` for ``dur_sec=0``: header
``datetime,datetime_nano`` then ``<contract>.<field>`` for ``last_price, highest, lowest,
average, volume, amount, open_interest`` and, per level, ``bid_price{k}, bid_volume{k},
ask_price{k}, ask_volume{k}``: five levels for SHFE/INE, level 1 only elsewhere (levels 2-5
may be absent and become NaN; a level is either complete or absent). ``datetime`` is
Asia/Shanghai local time ``2026-01-05 09:00:00.500000000`` and must agree with
``datetime_nano`` (ns since the epoch, the time actually used). Missing values may be
empty, ``nan`` or ``#N/A`` (what ``DataDownloader`` writes).

Every column must belong to the roll schedule's underlying; a column of another contract
means the file is not what the schedule says and is rejected. Errors name the file, the
line and the column. Files are parsed with pandas' C reader; one numpy pass over the bytes
first checks that every line has the header's number of fields (pandas would silently pad
a short row with NaN), and the slower search for a bad value only runs after a failure.

Tick ids: the format has no tick id, so rows are ordered by ``datetime_nano`` (stable, file
order breaks ties) and numbered with :func:`synthetic_tick_ids`, a per-day sequence that
is deterministic and monotone within and across days.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import os
import re
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from ghtrader_assets.calendar import TZ, is_trading_day, trading_days_of
from ghtrader_assets.schema import TICKS, conform, empty_frame
from ghtrader_assets.sources.base import (
    MalformedInputError,
    NoDataError,
    RollEntry,
    SourceError,
    TickSource,
    UnknownSymbolError,
)
from ghtrader_assets.sources.downloader_time import accept_host_local
from ghtrader_assets.symbols import MainSymbol, SymbolError, parse_contract, parse_main_symbol

SOURCE_NAME = "csv"
ROLL_FILE = "roll_schedule.csv"
ROLL_COLUMNS = ("trading_day", "symbol", "underlying")
#: Fields before the book, in DataDownloader order.
BASE_FIELDS = ("last_price", "highest", "lowest", "average", "volume", "amount", "open_interest")
LEVEL_FIELDS = ("bid_price", "bid_volume", "ask_price", "ask_volume")
#: Exchanges for which DataDownloader writes five levels.
FIVE_LEVEL_EXCHANGES = frozenset({"SHFE", "INE", "SSE", "SZSE"})
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
#: Strings read as a missing value (pandas' defaults include these and more).
NA_STRINGS = frozenset({"", "nan", "NaN", "NAN", "#N/A", "N/A", "NA", "null", "NULL", "None"})

#: Ids of one day start at ``day.toordinal() * ID_DAY_STRIDE``; no day has that many ticks.
ID_DAY_STRIDE = 10_000_000


def synthetic_tick_ids(trading_day: dt.date, n: int) -> np.ndarray:
    """Tick ids for sources without native ones: ``day.toordinal() * 10**7 + row``.

    Deterministic, strictly increasing within a day and across days, and unique per symbol,
    so the store's ``(ts, symbol, id)`` key never collapses two ticks.
    """
    return trading_day.toordinal() * ID_DAY_STRIDE + np.arange(n, dtype=np.int64)


def downloader_columns(underlying: str, levels: int | None = None) -> list[str]:
    """The DataDownloader tick header for ``underlying`` (levels default by exchange)."""
    if levels is None:
        levels = 5 if underlying.split(".", 1)[0] in FIVE_LEVEL_EXCHANGES else 1
    fields = list(BASE_FIELDS) + [f"{f}{k}" for k in range(1, levels + 1) for f in LEVEL_FIELDS]
    return ["datetime", "datetime_nano"] + [f"{underlying}.{f}" for f in fields]


def write_downloader_csv(df: pd.DataFrame, path: Path, underlying: str | None = None) -> None:
    """Write a TICKS-conformed frame as a DataDownloader tick file (atomically).

    ``underlying`` is taken from the frame's single ``underlying`` value; pass it for an
    empty frame. Levels 2-5 are written for SHFE/INE contracts only, as DataDownloader does.
    Numbers use the shortest text that reads back to the same float (Arrow's CSV writer,
    ~50x faster than ``DataFrame.to_csv``), so ``1e+13`` may appear where DataDownloader
    would print ``10000000000000.0``; missing values are written ``nan`` like DataDownloader.
    """
    path = Path(path)
    found = pd.unique(df["underlying"]) if "underlying" in df.columns else []
    if len(found) > 1:
        raise ValueError(f"{path}: one file holds one contract, the frame has {list(found)}")
    if underlying is None:
        if len(found) == 0:
            raise ValueError(f"{path}: empty frame; pass underlying= to write its header")
        underlying = str(found[0])
    elif len(found) == 1 and str(found[0]) != underlying:
        raise ValueError(f"{path}: frame holds {found[0]}, not {underlying}")
    parse_contract(underlying)
    header = downloader_columns(underlying)
    nanos = df["datetime"].to_numpy(dtype=np.int64)
    local = pd.to_datetime(nanos, utc=True).tz_convert(TZ).tz_localize(None)
    text = np.datetime_as_string(local.to_numpy(dtype="datetime64[ns]"), unit="ns")
    arrays = [pa.array(np.char.replace(text, "T", " ", count=1)), pa.array(nanos)]
    prefix = len(underlying) + 1
    for col in header[2:]:
        arrays.append(pa.array(df[col[prefix:]].to_numpy(dtype=np.float64), from_pandas=True))
    table = pa.Table.from_arrays(arrays, names=header)
    options = pa_csv.WriteOptions(null_string="nan", quoting_style="none", quoting_header="none")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        pa_csv.write_csv(table, tmp, options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_roll_schedule(entries: Iterable[RollEntry], root: Path) -> Path:
    """Write ``root/roll_schedule.csv`` for ``entries`` (sorted by symbol and day)."""
    rows = sorted((e.symbol.raw, e.trading_day.isoformat(), e.underlying) for e in entries)
    path = Path(root) / ROLL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([(day, sym, und) for sym, day, und in rows], columns=list(ROLL_COLUMNS))
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, path)
    return path


def read_roll_schedule(path: Path) -> list[RollEntry]:
    """The entries of a roll schedule file, checked as the source checks its own (sorted by
    symbol and day)."""
    schedule = _RollSchedule(Path(path))
    return [
        RollEntry(symbol, day, underlying, SOURCE_NAME)
        for (symbol, day), (underlying, _) in sorted(
            schedule.entries.items(), key=lambda kv: (kv[0][0].raw, kv[0][1])
        )
    ]


def _where(path: Path, line: int | None = None, column: str | None = None) -> str:
    out = str(path)
    if line is not None:
        out += f", line {line}"
    if column is not None:
        out += f", column {column!r}"
    return out


class _RollSchedule:
    """The parsed roll file: ``(symbol, day) -> underlying``, with file line numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[tuple[MainSymbol, dt.date], tuple[str, int]] = {}
        self.days: dict[MainSymbol, list[dt.date]] = {}
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SourceError(
                f"{path}: roll schedule file not found (the csv source needs "
                f"{ROLL_FILE} with columns {','.join(ROLL_COLUMNS)} under its root)"
            ) from None
        reader = csv.reader(io.StringIO(decode_utf8(path, data), newline=""))
        header = [h.strip() for h in next(reader, [])]
        for col in ROLL_COLUMNS:
            if col not in header:
                raise MalformedInputError(
                    f"{_where(path, 1, col)}: missing column; header must contain "
                    f"{','.join(ROLL_COLUMNS)}, got {','.join(header) or 'nothing'}"
                )
        pos = {c: header.index(c) for c in ROLL_COLUMNS}
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            self._add(row, pos, reader.line_num)

    def _add(self, row: list[str], pos: dict[str, int], line: int) -> None:
        path = self.path
        if len(row) <= max(pos.values()):
            missing = next(c for c, i in pos.items() if i >= len(row))
            raise MalformedInputError(f"{_where(path, line, missing)}: value missing")
        raw_day, raw_sym, raw_und = (row[pos[c]].strip() for c in ROLL_COLUMNS)
        try:
            day = dt.date.fromisoformat(raw_day)
        except ValueError:
            raise MalformedInputError(
                f"{_where(path, line, 'trading_day')}: {raw_day!r} is not an ISO date (YYYY-MM-DD)"
            ) from None
        if not is_trading_day(day):
            raise MalformedInputError(
                f"{_where(path, line, 'trading_day')}: {day} is not a trading day"
            )
        try:
            symbol = parse_main_symbol(raw_sym)
        except SymbolError as exc:
            raise MalformedInputError(f"{_where(path, line, 'symbol')}: {exc}") from None
        try:
            contract = parse_contract(raw_und)
        except SymbolError as exc:
            raise MalformedInputError(f"{_where(path, line, 'underlying')}: {exc}") from None
        if (contract.exchange, contract.product) != (symbol.exchange, symbol.product):
            raise MalformedInputError(
                f"{_where(path, line, 'underlying')}: {raw_und} is not a contract of {symbol.raw}"
            )
        previous = self.entries.get((symbol, day))
        if previous is not None:
            raise MalformedInputError(
                f"{_where(path, line, 'trading_day')}: {symbol.raw} {day} already has an "
                f"entry on line {previous[1]}"
            )
        self.entries[(symbol, day)] = (contract.raw, line)
        self.days.setdefault(symbol, []).append(day)


class CsvSource(TickSource):
    """Roll schedule and ticks from a directory of DataDownloader files (module docstring)."""

    name = SOURCE_NAME

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._schedule: _RollSchedule | None = None
        self._index: FileIndex | None = None
        self._left_out: dict[tuple[str, dt.date], pd.DataFrame] = {}

    @property
    def roll_path(self) -> Path:
        return self.root / ROLL_FILE

    def schedule(self) -> _RollSchedule:
        """The roll file, read and checked once per source."""
        if self._schedule is None:
            self._schedule = _RollSchedule(self.roll_path)
        return self._schedule

    def roll_entry(self, symbol: MainSymbol, trading_day: dt.date) -> RollEntry:
        sched = self.schedule()
        days = sched.days.get(symbol)
        if not days:
            known = ", ".join(sorted(s.raw for s in sched.days)) or "none"
            raise UnknownSymbolError(
                f"{symbol.raw}: not in the roll schedule {sched.path} (symbols there: {known})"
            )
        found = sched.entries.get((symbol, trading_day))
        if found is None:
            raise NoDataError(
                f"{symbol.raw}: no roll entry for {trading_day} in {sched.path} "
                f"(it covers {min(days)}..{max(days)})"
            )
        return RollEntry(symbol, trading_day, found[0], self.name)

    def tick_files(self, underlying: str, trading_day: dt.date) -> list[tuple[Path, bool]]:
        """Every ``(path, per_day)`` that may hold ``underlying`` on ``trading_day``.

        The fixed layout (``<underlying>/<day>.csv[.gz]``, then ``<underlying>.csv[.gz]``)
        wins; otherwise files found anywhere under the root by their header (see
        :class:`FileIndex`): the per-day file(s) named for the day, else the contract's
        many-day files.
        """
        looked = []
        for name in (f"{trading_day.isoformat()}.csv", f"{trading_day.isoformat()}.csv.gz"):
            per_day = self.root / underlying / name
            looked.append(per_day)
            if per_day.is_file():
                return [(per_day, True)]
        for name in (f"{underlying}.csv", f"{underlying}.csv.gz"):
            many = self.root / name
            looked.append(many)
            if many.is_file():
                return [(many, False)]
        found = self.index().files_for(underlying, trading_day)
        if found:
            return found
        raise NoDataError(
            f"{underlying} {trading_day}: no tick file (looked for "
            f"{', '.join(str(p) for p in looked)} and for files under {self.root} whose "
            "header names the contract)"
        )

    def index(self) -> FileIndex:
        """Tick files anywhere under the root, found by their header (built once)."""
        if self._index is None:
            self._index = FileIndex.scan(self.root)
        return self._index

    def ticks(self, entry: RollEntry) -> pd.DataFrame:
        day = entry.trading_day
        wanted = day.isoformat()
        self._left_out.pop((entry.underlying, day), None)
        parts, excluded, spans = [], [], []
        covered = False
        for path, per_day in self.tick_files(entry.underlying, day):
            raw = read_downloader_csv(path, entry.underlying)
            if raw.empty:
                covered = covered or per_day
                continue
            nanos = raw["datetime_nano"].to_numpy(dtype=np.int64)
            stamps = pd.DatetimeIndex(nanos.view("datetime64[ns]")).tz_localize("UTC")
            days = trading_days_of(stamps)
            mask = days == wanted
            if per_day:
                covered = True
                excluded.append(_misdated(path, raw, days, mask, wanted))
            elif days.min() <= wanted <= days.max():
                covered = True
            else:
                spans.append(f"{path} covers trading days {days.min()}..{days.max()}")
            parts.append(raw[mask])
        if not covered:
            raise NoDataError(
                f"{entry.underlying} {day}: no tick file covers this trading day"
                + (f" ({'; '.join(spans)})" if spans else "")
            )
        raw = pd.concat(parts) if len(parts) > 1 else parts[0] if parts else None
        if raw is None or raw.empty:
            return empty_frame(TICKS)
        raw = raw.sort_values("datetime_nano", kind="stable")
        nanos = raw["datetime_nano"].to_numpy(dtype=np.int64)
        prefix = len(entry.underlying) + 1
        data = {
            "symbol": entry.symbol.raw,
            "trading_day": wanted,
            "ts": pd.DatetimeIndex(nanos.view("datetime64[ns]")).tz_localize("UTC"),
            "datetime": nanos,
            "id": _shared_ids(day, raw),
            "underlying": entry.underlying,
            "source": self.name,
        }
        for col in raw.columns[2:]:
            data[col[prefix:]] = raw[col].to_numpy(dtype=np.float64)
        dropped = [e for e in excluded if e is not None and len(e)]
        if dropped:
            self._left_out[(entry.underlying, day)] = pd.concat(dropped, ignore_index=True)
        return conform(pd.DataFrame(data), TICKS)

    def left_out(self, entry: RollEntry) -> pd.DataFrame | None:
        """Misdated rows the last :meth:`ticks` of ``entry`` left out: file, line, datetime,
        the trading day they belong to, and why."""
        return self._left_out.get((entry.underlying, entry.trading_day))


#: A per-day file may hold at most this share of rows stamped on another trading day; they
#: are left out and reported. Above it the file is refused: it is mostly another day.
MAX_MISDATED_SHARE = 0.01


def _misdated(
    path: Path, raw: pd.DataFrame, days: np.ndarray, mask: np.ndarray, wanted: str
) -> pd.DataFrame | None:
    """Rows of a per-day file that belong to another trading day: a few are left out and
    returned for the report; more than :data:`MAX_MISDATED_SHARE` refuses the file."""
    if mask.all():
        return None
    bad = np.flatnonzero(~mask)
    if bad.size > MAX_MISDATED_SHARE * len(raw):
        first = int(bad[0])
        raise MalformedInputError(
            f"{_where(path, int(raw.index[first]), 'datetime_nano')}: tick at "
            f"{raw['datetime'].iloc[first]} belongs to trading day {days[first]}, but the file "
            f"is for {wanted} ({bad.size} of {len(raw)} rows belong to other days, more than "
            f"the {MAX_MISDATED_SHARE:.0%} left out as misdated: the file is misnamed or mixed)"
        )
    return pd.DataFrame(
        {
            "file": str(path),
            "line": raw.index[bad].to_numpy(dtype=np.int64),
            "datetime": raw["datetime"].iloc[bad].to_numpy(),
            "belongs_to": days[bad],
            "reason": f"stamped outside trading day {wanted} (the file's day)",
        }
    )


def _shared_ids(day: dt.date, raw: pd.DataFrame) -> np.ndarray:
    """Synthetic ids where a row identical in every field to an earlier row of the day gets
    that row's id, so ingestion drops and counts it as an exact duplicate (vendors repeat
    snapshots, CZCE often within one whole second); distinct rows keep distinct ids.

    Rows are matched by a 64-bit hash of all fields (one vectorized pass, several times
    faster than ``DataFrame.duplicated``), and every match is then confirmed field by field,
    so a hash collision can never merge two distinct rows."""
    ids = synthetic_tick_ids(day, len(raw))
    if len(raw) < 2:
        return ids
    hashes = pd.util.hash_pandas_object(raw, index=False).to_numpy()
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    first_pos = first[inverse]
    repeat = np.flatnonzero(first_pos != np.arange(len(raw)))
    if not repeat.size:
        return ids
    same = np.ones(repeat.size, dtype=bool)
    for col in raw.columns:
        values = raw[col].to_numpy()
        a, b = values[repeat], values[first_pos[repeat]]
        equal = a == b
        if values.dtype.kind == "f":
            equal |= np.isnan(a) & np.isnan(b)
        same &= equal
    ids[repeat[same]] = ids[first_pos[repeat[same]]]
    return ids


_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def day_in_name(path: Path) -> dt.date | None:
    """The trading day a file's name states (``..._20170414_...``, ``2026-01-05.csv``)."""
    for match in _DATE_IN_NAME.finditer(path.name):
        try:
            day = dt.date(*(int(g) for g in match.groups()))
        except ValueError:
            continue
        if is_trading_day(day):
            return day
    return None


def read_header(path: Path) -> list[str]:
    """The header fields of a tick file (only the first line is decompressed)."""
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as handle:
            first = handle.readline(1 << 16)
    except (OSError, EOFError, zlib.error) as exc:
        raise MalformedInputError(f"{_where(path)}: unreadable ({exc})") from None
    text = decode_utf8(path, first.rstrip(b"\r\n") + b"\n")
    return [h.strip() for h in text.strip().split(",")]


def is_tick_header(header: list[str]) -> bool:
    """True for a DataDownloader *tick* header (``datetime,datetime_nano,...``); kline
    downloads and other CSV files in a download folder are not tick files."""
    return header[:2] == ["datetime", "datetime_nano"]


def header_contract(path: Path, header: list[str]) -> str:
    """The contract a DataDownloader header is about (``SHFE.cu2602``); raises otherwise."""
    if header[:2] != ["datetime", "datetime_nano"] or len(header) < 3:
        raise MalformedInputError(
            f"{_where(path, 1)}: not a DataDownloader tick file (header must start "
            f"datetime,datetime_nano,<contract>.<field>; found {','.join(header[:3])!r})"
        )
    contract = header[2].rpartition(".")[0]
    try:
        parse_contract(contract)
    except SymbolError as exc:
        raise MalformedInputError(f"{_where(path, 1, header[2])}: {exc}") from None
    return contract


def tick_paths(root: Path) -> list[Path]:
    """``.csv``/``.csv.gz`` files under ``root`` (links followed, hidden names and the roll
    schedule skipped), sorted."""
    found = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith(".") or name == ROLL_FILE or not name.endswith(TICK_SUFFIXES):
                continue
            found.append(Path(folder) / name)
    return sorted(found)


class FileIndex:
    """Tick files found by content: contract from the header, day from the name.

    A file whose name states a trading day is that day's file; any other file is a
    many-day file of its contract, filtered by trading day when read.
    """

    def __init__(
        self, files: dict[str, list[tuple[Path, dt.date | None]]], skipped: list[Path]
    ) -> None:
        self.files = files
        #: CSV files whose header is not a tick header (klines, notes): not read.
        self.skipped = skipped

    @classmethod
    def scan(cls, root: Path) -> FileIndex:
        files: dict[str, list[tuple[Path, dt.date | None]]] = {}
        skipped: list[Path] = []
        for path in tick_paths(root):
            header = read_header(path)
            if not is_tick_header(header):
                skipped.append(path)
                continue
            contract = header_contract(path, header)
            files.setdefault(contract, []).append((path, day_in_name(path)))
        return cls(files, skipped)

    def files_for(self, contract: str, trading_day: dt.date) -> list[tuple[Path, bool]]:
        mine = self.files.get(contract, [])
        named = [(p, True) for p, d in mine if d == trading_day]
        if len(named) > 1:
            raise MalformedInputError(
                f"{contract} {trading_day}: several files claim this day: "
                + ", ".join(str(p) for p, _ in named)
                + " (keep one, or move the others out of the folder)"
            )
        return named or [(p, False) for p, d in mine if d is None]


# -- reading -------------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"
#: Endings of tick files the source reads; ``.gz`` files are decompressed in memory.
TICK_SUFFIXES = (".csv", ".csv.gz")


def is_gzip(path: Path) -> bool:
    return path.name.endswith(".gz")


def read_file_bytes(path: Path) -> bytes:
    """The bytes of ``path``, decompressed when it is a ``.gz`` file.

    gzip stores a CRC and the length of the data in its trailer, so a file that
    decompresses without error is complete as it was written; a cut or corrupt one is
    malformed input (not a transient error worth retrying).
    """
    data = path.read_bytes()
    if not is_gzip(path):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise MalformedInputError(
            f"{_where(path)}: not a complete gzip file ({exc}); the download or copy was "
            "probably cut short: fetch the file again"
        ) from None


def decode_utf8(path: Path, data: bytes, header: list[str] | None = None) -> str:
    """``data`` as text; bytes that are not UTF-8 raise naming file, line, column and the
    likely encoding (Chinese Windows tools write GBK/GB18030).

    Not retried: the same bytes fail the same way every time.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        raw_line = data[line_start : line_end if line_end >= 0 else len(data)]
        line = data.count(b"\n", 0, exc.start) + 1
        if header is None:
            first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
            header = [h.strip() for h in first.split(",")]
        field = data.count(b",", line_start, exc.start)
        column = header[field] if field < len(header) else None
        try:
            shown = raw_line.decode("gb18030").rstrip("\r")
            hint = f"it reads as GBK/GB18030: {shown[:60]!r}"
        except UnicodeDecodeError:
            hint = "unknown encoding"
        raise MalformedInputError(
            f"{_where(path, line, column)}: bytes {data[exc.start : exc.start + 2]!r} are not "
            f"UTF-8 ({hint}); save the file as UTF-8, e.g. iconv -f GB18030 -t UTF-8"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _check_last_line(path: Path, data: bytes, header: list[str], index: _LineIndex) -> None:
    """Refuse a plain file whose last data line has no newline: it may have been cut.

    DataDownloader ends every line with a newline, so a missing one means the write (or
    copy) stopped early, and a cut value still parses (``ask_volume5`` 43 cut to 4). A
    gzip file proves its own completeness (CRC and length), so only plain files are
    refused; the error names the last column, whose value may be short.
    """
    if not data or data.endswith(b"\n") or is_gzip(path) or len(index.data_lines) == 0:
        return
    line = int(index.data_lines[-1])
    last = data[data.rfind(b"\n") + 1 :].decode("utf-8").rstrip("\r").rsplit(",", 1)[-1]
    raise MalformedInputError(
        f"{_where(path, line, header[-1])}: the last line has no newline, so it may have been "
        f"cut short (last value {last!r}); re-export or re-download the file (DataDownloader "
        "ends every line with a newline), or compress it with gzip, whose checksum proves "
        "a file complete"
    )


def _check_header(path: Path, header: list[str], underlying: str) -> list[str]:
    """The columns to read, in file order; raise naming the first bad column."""
    if not header or header == [""]:
        raise MalformedInputError(f"{_where(path, 1)}: empty file, no header")
    for i, want in enumerate(("datetime", "datetime_nano")):
        if i >= len(header) or header[i] != want:
            got = header[i] if i < len(header) else "nothing"
            raise MalformedInputError(
                f"{_where(path, 1, want)}: missing column (DataDownloader files start with "
                f"datetime,datetime_nano; found {got!r})"
            )
    seen: set[str] = set()
    for col in header[2:]:
        prefix, _, field = col.rpartition(".")
        if not prefix:
            raise MalformedInputError(
                f"{_where(path, 1, col)}: not a <contract>.<field> column of {underlying}"
            )
        if prefix != underlying:
            raise MalformedInputError(
                f"{_where(path, 1, col)}: column is for {prefix}, but the roll schedule says "
                f"the underlying is {underlying}"
            )
        if col in seen:
            raise MalformedInputError(f"{_where(path, 1, col)}: duplicate column")
        seen.add(col)
    known = set(BASE_FIELDS) | {f"{f}{k}" for k in range(1, 6) for f in LEVEL_FIELDS}
    fields = {c[len(underlying) + 1 :] for c in seen}
    required = list(BASE_FIELDS) + [f"{f}1" for f in LEVEL_FIELDS]
    for k in range(2, 6):
        level = [f"{f}{k}" for f in LEVEL_FIELDS]
        if any(f in fields for f in level):
            required += level
    for f in required:
        if f not in fields:
            raise MalformedInputError(f"{_where(path, 1, f'{underlying}.{f}')}: missing column")
    return header[:2] + [c for c in header[2:] if c[len(underlying) + 1 :] in known]


class _LineIndex:
    """Where each line of a file starts and ends and how many fields it has.

    DataDownloader files never quote, so a line's field count is its comma count + 1. One
    numpy pass over the bytes gives exact line numbers for error messages and catches
    ragged rows, which pandas would otherwise pad with NaN or truncate silently.
    """

    def __init__(self, data: bytes) -> None:
        buf = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(buf == ord("\n"))
        if len(buf) and buf[-1] != ord("\n"):
            ends = np.append(ends, len(buf))
        starts = np.r_[0, ends[:-1] + 1].astype(np.int64)
        length = ends - starts
        has_cr = np.zeros(len(ends), dtype=bool)
        nonempty = length > 0
        has_cr[nonempty] = buf[ends[nonempty] - 1] == ord("\r")
        commas = np.flatnonzero(buf == ord(","))
        self.fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        self.blank = (length - has_cr) == 0
        numbers = np.arange(1, len(ends) + 1, dtype=np.int64)
        #: File line number of each data row, as pandas counts rows (blank lines skipped).
        self.data_lines = numbers[1:][~self.blank[1:]]

    def check_fields(self, path: Path, expected: int) -> None:
        data_fields = self.fields[1:][~self.blank[1:]]
        bad = np.flatnonzero(data_fields != expected)
        if bad.size:
            line, saw = int(self.data_lines[bad[0]]), int(data_fields[bad[0]])
            raise MalformedInputError(
                f"{_where(path, line)}: expected {expected} fields like the header, saw {saw}"
            )


def _locate_bad_value(
    path: Path, data: bytes, usecols: list[str], lines: np.ndarray, cause: Exception
) -> MalformedInputError:
    """Find the first (line, column) whose value is not a number (slow path, after a failure)."""
    text = pd.read_csv(io.BytesIO(data), usecols=usecols, dtype=str, keep_default_na=False)
    worst: tuple[int, int, str, str] | None = None
    for order, col in enumerate(usecols[1:], start=1):
        values = text[col].str.strip()
        missing = values.isin(NA_STRINGS)
        numbers = pd.to_numeric(values.where(~missing), errors="coerce")
        if col == "datetime_nano":
            bad = missing | numbers.isna() | (numbers % 1 != 0)
            problem = "missing or not an integer"
        else:
            bad = numbers.isna() & ~missing
            problem = "not a number"
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            if worst is None or (row, order) < (worst[0], worst[1]):
                worst = (row, order, col, f"{values.iloc[row]!r} is {problem}")
    if worst is None:
        return MalformedInputError(f"{_where(path)}: unreadable tick file ({cause})")
    row, _, col, message = worst
    return MalformedInputError(f"{_where(path, int(lines[row]), col)}: {message}")


def read_downloader_csv(path: Path, underlying: str) -> pd.DataFrame:
    """Read and check a DataDownloader tick file of ``underlying``.

    Returns ``datetime`` (str), ``datetime_nano`` (int64) and the float64
    ``<underlying>.<field>`` columns in file order, indexed by file line number.
    """
    path = Path(path)
    data = read_file_bytes(path)
    decode_utf8(path, data)
    if data.startswith(BOM):
        data = data[len(BOM) :]
    first = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    header = [h.strip() for h in next(csv.reader([first]), [])]
    usecols = _check_header(path, header, underlying)
    index = _LineIndex(data)
    index.check_fields(path, len(header))
    _check_last_line(path, data, header, index)
    lines = index.data_lines
    dtypes: dict[str, object] = {c: np.float64 for c in usecols[2:]}
    dtypes.update({"datetime": str, "datetime_nano": np.int64})
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            usecols=usecols,
            dtype=dtypes,
            engine="c",
            skipinitialspace=True,
            na_values=sorted(NA_STRINGS),
        )
    except (ValueError, pd.errors.ParserError, OverflowError) as exc:
        raise _locate_bad_value(path, data, usecols, lines, exc) from exc
    frame = frame[usecols]
    frame.index = pd.Index(lines, name="line")
    if frame.empty:
        return frame
    parsed = pd.to_datetime(frame["datetime"], format=DATETIME_FORMAT, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise MalformedInputError(
            f"{_where(path, int(lines[row]), 'datetime')}: {frame['datetime'].iloc[row]!r} is "
            "not a datetime (expected YYYY-MM-DD HH:MM:SS.fffffffff, Asia/Shanghai)"
        )
    local = pd.DatetimeIndex(parsed).tz_localize(TZ).as_unit("ns").asi8
    differs = local != frame["datetime_nano"].to_numpy()
    if differs.any() and not accept_host_local(
        path, pd.DatetimeIndex(parsed).as_unit("ns").asi8, frame["datetime_nano"].to_numpy()
    ):
        row = int(np.flatnonzero(differs)[0])
        raise MalformedInputError(
            f"{_where(path, int(lines[row]), 'datetime')}: {frame['datetime'].iloc[row]!r} does "
            f"not match datetime_nano {frame['datetime_nano'].iloc[row]} in Asia/Shanghai time"
        )
    return frame
