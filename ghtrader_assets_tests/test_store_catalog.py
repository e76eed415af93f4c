"""The embedded store's partition catalog: consistent with the files under concurrent
writers and kill -9, repaired when they disagree, and what corrupt partitions look like to
coverage, status, the coverage report and a replacing write (issue 10 items 5-6, issue 12
item 3)."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import signal
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ghtrader_assets.assets.ingest import guard_replacement
from ghtrader_assets.metrics import TimedStore, record_metrics
from ghtrader_assets.reports import coverage_report
from ghtrader_assets.schema import METRICS, TICKS, VALIDATION_SUMMARY, conform
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.status import recent_metrics, status_table
from ghtrader_assets.stores.base import StoreError
from ghtrader_assets.stores.catalog import CATALOG_FILE
from ghtrader_assets.stores.embedded import EmbeddedStore
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import validate_day
from ghtrader_assets_tests.test_store_embedded import AU, CU, DAY1, DAY2, DAY3, tick_frame


def footer_coverage(store: EmbeddedStore, symbol: str) -> tuple[int, int, int | None, int | None]:
    """(days, rows, first ts, last ts) computed from the files themselves, not the catalog."""
    days = rows = 0
    first = last = None
    sym_dir = store.table_dir(TICKS) / f"symbol={symbol.replace('KQ.m@', '').replace('.', '_')}"
    for path in sorted(sym_dir.glob("trading_day=*/part.parquet")):
        table = pq.read_table(path, columns=["ts"])
        days += 1
        rows += table.num_rows
        if table.num_rows:
            ts = table["ts"].cast("int64").to_numpy()
            first = int(ts.min()) if first is None else min(first, int(ts.min()))
            last = int(ts.max()) if last is None else max(last, int(ts.max()))
    return days, rows, first, last


def catalog_coverage(store: EmbeddedStore, symbol: str) -> tuple:
    row = store.coverage([symbol]).iloc[0]
    as_int = [None if pd.isna(v) else int(v.value) for v in (row["first_ts"], row["last_ts"])]
    return int(row["n_days"]), int(row["rows"]), *as_int


# --------------------------------------------------------------------------- consistency


def test_catalog_matches_the_files_after_writes_and_replacements(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=300, seed=1))
    store.write_partition(TICKS, CU, DAY2, tick_frame(CU, DAY2, n=200, seed=2))
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=50, seed=3))  # replace
    store.write_partition(TICKS, CU, DAY3, tick_frame(CU, DAY3, n=0))  # an empty day
    assert catalog_coverage(store, CU) == footer_coverage(store, CU)
    assert catalog_coverage(store, CU)[:2] == (3, 250)
    assert store.partitions(TICKS, CU) == [DAY1, DAY2, DAY3]
    assert store.latest([CU])["trading_day"].tolist() == [DAY2]  # newest non-empty day
    assert store.verify(full=True).line().endswith("0 repaired, 0 corrupt")


def _writer(root: str, symbol: str, seed: int, rounds: int) -> None:
    store = EmbeddedStore(Path(root))
    for i in range(rounds):
        for day in (DAY1, DAY2, DAY3):
            n = 20 + (seed * 7 + i * 13) % 50
            store.write_partition(TICKS, symbol, day, tick_frame(symbol, day, n=n, seed=seed))


def test_concurrent_writers_in_several_processes_leave_catalog_and_files_in_step(
    tmp_path: Path,
) -> None:
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), sym, seed, 4))
        for seed, sym in enumerate((CU, CU, AU, AU))
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = EmbeddedStore(tmp_path, cache=False)
    for sym in (CU, AU):
        assert catalog_coverage(store, sym) == footer_coverage(store, sym)
    report = store.verify(full=True)
    assert (report.checked, report.repaired, report.corrupt, report.removed) == (6, [], [], [])


def _killed_mid_write(root: str, when: str) -> None:
    """Replace DAY1 and die by SIGKILL just before the rename (``when="rename"``) or after
    it, before the catalog commit (``when="commit"``)."""
    from ghtrader_assets.stores import catalog as catalog_module

    def die(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        os.kill(os.getpid(), signal.SIGKILL)

    if when == "commit":
        catalog_module.Catalog.record = die
    else:
        os.replace = die
    store = EmbeddedStore(Path(root))
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=77, seed=5))


@pytest.mark.parametrize(("when", "rows"), [("rename", 300), ("commit", 77)])
def test_kill_9_mid_write_is_repaired_by_the_next_reader(tmp_path: Path, when, rows) -> None:
    store = EmbeddedStore(tmp_path, cache_ttl_seconds=None)
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=300, seed=1))
    assert store.coverage([CU])["rows"].iloc[0] == 300
    child = mp.get_context("spawn").Process(target=_killed_mid_write, args=(str(tmp_path), when))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL

    with sqlite3.connect(tmp_path / CATALOG_FILE) as con:  # the dead writer's intent
        assert con.execute("SELECT count(*) FROM intents").fetchone()[0] == 1
    # The file is the old one (killed before the rename) or the new one (after it); the
    # next read settles the intent from whichever it is.
    assert store.coverage([CU])["rows"].iloc[0] == rows
    assert catalog_coverage(store, CU) == footer_coverage(store, CU)
    with sqlite3.connect(tmp_path / CATALOG_FILE) as con:
        assert con.execute("SELECT count(*) FROM intents").fetchone()[0] == 0


def test_files_changed_behind_the_store_are_found_and_the_catalog_rebuilt(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    for day in (DAY1, DAY2):
        store.write_partition(TICKS, CU, day, tick_frame(CU, day, n=100))
    # by hand: delete one day, copy another symbol's day in
    store.partition_path(TICKS, CU, DAY2).unlink()
    other = EmbeddedStore(tmp_path / "elsewhere")
    src = other.write_partition(TICKS, AU, DAY1, tick_frame(AU, DAY1, n=40)).location
    dest = store.partition_path(TICKS, AU, DAY1)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(Path(src).read_bytes())

    quick = store.verify()  # stat pass: the deleted file is dropped
    assert quick.removed == [f"ticks_main_l5 {CU} {DAY2}: file missing"]
    assert catalog_coverage(store, CU) == footer_coverage(store, CU)
    assert store.coverage([AU])["n_days"].iloc[0] == 0  # not catalogued yet
    rebuilt = store.reindex()
    assert rebuilt.added == [f"ticks_main_l5 {AU} {DAY1}"]
    assert catalog_coverage(store, AU) == footer_coverage(store, AU) == (1, 40, *_bounds(AU))


def _bounds(symbol: str) -> tuple[int, int]:
    ts = tick_frame(symbol, DAY1, n=40)["ts"]
    return int(ts.min().value), int(ts.max().value)


def test_a_store_written_before_the_catalog_is_indexed_on_first_use(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    for day in (DAY1, DAY2):
        store.write_partition(TICKS, CU, day, tick_frame(CU, day, n=60))
    before = store.coverage([CU])
    for name in os.listdir(tmp_path):
        if name.startswith(CATALOG_FILE):
            (tmp_path / name).unlink()
    fresh = EmbeddedStore(tmp_path)
    pd.testing.assert_frame_equal(fresh.coverage([CU]), before)


# --------------------------------------------------------------------------- corruption


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_latest_falls_back_to_the_newest_good_day(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    for day in (DAY1, DAY2):
        store.write_partition(TICKS, CU, day, tick_frame(CU, day, n=30))
    _truncate(store.partition_path(TICKS, CU, DAY2))
    assert store.latest([CU])["trading_day"].tolist() == [DAY1]
    assert store.damaged()["trading_day"].tolist() == [DAY2]


def test_truncated_ticks_file_is_reported_corrupt_and_never_fails_other_symbols(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    for sym in (CU, AU):
        store.write_partition(TICKS, sym, DAY1, tick_frame(sym, DAY1, n=100))
    bad = store.partition_path(TICKS, CU, DAY1)
    _truncate(bad)

    report = store.verify()  # size differs: read in full, found corrupt
    assert report.corrupt and str(CU) in report.corrupt[0]
    damaged = store.damaged()
    assert damaged[["table", "symbol", "trading_day"]].values.tolist() == [
        ["ticks_main_l5", CU, DAY1]
    ]
    cov = store.coverage([CU, AU]).set_index("symbol")
    assert cov.at[AU, "rows"] == 100  # the healthy symbol is untouched
    assert store.latest([CU, AU])["symbol"].tolist() == [AU]  # CU has no other good day
    with pytest.raises(StoreError, match=rf"{bad}.*unreadable.*marked corrupt"):
        store.read_partition(TICKS, CU, DAY1)

    # Replacing the corrupt day works and clears the mark.
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=90, seed=4))
    assert store.damaged().empty
    assert catalog_coverage(store, CU) == footer_coverage(store, CU)


def test_a_reader_of_the_old_file_never_marks_a_concurrent_writers_fresh_row_corrupt(
    tmp_path: Path, monkeypatch
) -> None:
    """Review finding: a reader opens a damaged file, a writer renames a good one over it
    and records its catalog row, then the reader's parse fails. Marking "corrupt" then
    (without the partition lock, without checking which file failed) overwrote the fresh
    row. Now the mark is taken under the lock and only for the file that failed; the
    reader reads the new file instead."""
    import ghtrader_assets.stores.embedded as embedded

    store = EmbeddedStore(tmp_path, cache=False)
    writer = EmbeddedStore(tmp_path, cache=False)  # another process, in effect
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=100))
    path = store.partition_path(TICKS, CU, DAY1)
    with open(path, "r+b") as fh:  # damage the file in place (same inode)
        fh.seek(len(path.read_bytes()) // 2)
        fh.write(b"\0" * 64)
    fresh = tick_frame(CU, DAY1, n=90, seed=4)
    real_read = embedded.pq.read_table
    calls = []

    def read_while_a_writer_replaces(source, **kwargs):
        if not calls:  # the reader holds the old file open; the writer commits meanwhile
            writer.write_partition(TICKS, CU, DAY1, fresh)
        calls.append(1)
        return real_read(source, **kwargs)

    monkeypatch.setattr(embedded.pq, "read_table", read_while_a_writer_replaces)
    back = store.read_partition(TICKS, CU, DAY1)
    assert len(calls) == 2  # the damaged old file, then the writer's new one
    assert len(back) == 90
    assert store.damaged().empty
    entry = store.catalog.entry(TICKS.name, CU, DAY1)
    assert entry is not None and entry.state == "ok" and entry.rows == 90


def test_a_file_still_damaged_under_the_lock_is_marked_corrupt(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=100))
    _truncate(store.partition_path(TICKS, CU, DAY1))
    with pytest.raises(StoreError, match="marked corrupt"):
        store.read_partition(TICKS, CU, DAY1)
    assert store.damaged()["trading_day"].tolist() == [DAY1]


def test_a_damaged_file_whose_lock_is_held_is_reported_unmarked_after_one_wait(
    tmp_path: Path, monkeypatch
) -> None:
    """Review finding: when the partition lock could not be had, the reader retried (each
    time waiting out the lock) and then said "marked corrupt in the catalog" although
    nothing was marked. Now it waits once and says it was not marked."""
    from filelock import FileLock

    import ghtrader_assets.stores.embedded as embedded

    store = EmbeddedStore(tmp_path, cache=False, lock_timeout_seconds=0.2)
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=100))
    _truncate(store.partition_path(TICKS, CU, DAY1))
    real_read = embedded.pq.read_table
    reads = []
    monkeypatch.setattr(
        embedded.pq, "read_table", lambda source, **kw: reads.append(1) or real_read(source, **kw)
    )
    holder = FileLock(store._lock_of(TICKS.name, CU, DAY1))  # another writer, in effect
    done = threading.Event()
    held = threading.Event()

    def hold() -> None:
        with holder:
            held.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        held.wait(5)
        with pytest.raises(StoreError, match="not marked corrupt in the catalog") as info:
            store.read_partition(TICKS, CU, DAY1)
    finally:
        done.set()
        thread.join()
    assert "; marked corrupt" not in str(info.value)
    assert len(reads) == 1  # no retries, each waiting out the lock
    assert store.damaged().empty


def _garble_middle(path: Path, keep_mtime: bool) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes((b + 101) % 256 for b in data[mid : mid + 64])
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["touched", "mtime-kept"])
def test_garbage_in_the_middle_is_never_reported_healthy(tmp_path: Path, keep_mtime) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=3000))
    _garble_middle(store.partition_path(TICKS, CU, DAY1), keep_mtime)

    quick = store.verify()
    if keep_mtime:  # size and mtime kept: only a full read can tell
        assert quick.corrupt == []
        assert store.verify(full=True).corrupt
    else:
        assert quick.corrupt
    assert store.damaged()["trading_day"].tolist() == [DAY1]
    # A rebuild from scratch still finds it: page CRCs fail (or the file does not decode).
    for name in os.listdir(tmp_path):
        if name.startswith(CATALOG_FILE):
            (tmp_path / name).unlink()
    rebuilt = EmbeddedStore(tmp_path).reindex()
    assert len(rebuilt.corrupt) == 1 and CU in rebuilt.corrupt[0]


def _day_with_summary(store: EmbeddedStore, symbol: MainSymbol, day: str) -> int:
    src = SimulatedSource(seed=3)
    ticks = conform(src.ticks(src.roll_entry(symbol, dt.date.fromisoformat(day))), TICKS)
    result = validate_day(ticks, symbol, dt.date.fromisoformat(day))
    store.write_partition(TICKS, symbol.raw, day, ticks)
    store.write_partition(VALIDATION_SUMMARY, symbol.raw, day, result.summary)
    record_metrics(
        store,
        symbol.raw,
        day,
        {"ticks": {"ingest_rows_per_second": 1000.0 + len(ticks)}, "validation_summary": {}},
    )
    return len(ticks)


CU_MAIN = MainSymbol("SHFE", "cu")
AU_MAIN = MainSymbol("SHFE", "au")


def test_corrupt_summary_never_blocks_replacing_its_day_and_shows_in_status_and_report(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    day = "2025-03-04"
    rows = _day_with_summary(store, CU_MAIN, day)
    _day_with_summary(store, AU_MAIN, day)
    summary = store.partition_path(VALIDATION_SUMMARY, CU, day)
    summary.write_bytes(b"PAR1 this is not a parquet file PAR1")

    now = pd.Timestamp("2025-03-04 16:00", tz="Asia/Shanghai")
    status = status_table(store, (CU_MAIN, AU_MAIN), now=now, verify_files=True)
    status = status.set_index("symbol")
    assert status.at[CU, "checks"] == "corrupt: validation_summary"
    assert status.at[CU, "corrupt_days"] == 1
    assert status.at[AU, "checks"] == "ok" and status.at[AU, "corrupt_days"] == 0
    report = coverage_report(store, (CU_MAIN, AU_MAIN), as_of=dt.date(2025, 3, 4))
    report = report.set_index("symbol")
    assert report.at[CU, "corrupt_days"] == 1
    assert "validation_summary" in report.at[CU, "corrupt_sample"]
    assert report.at[AU, "corrupt_days"] == 0 and report.at[AU, "rows"] > 0

    # The guard refuses shrinking replacements, but a corrupt summary vouches for nothing.
    guard_replacement(store, CU_MAIN, day, 1, allow=False)
    with pytest.raises(Exception, match="refusing to replace"):
        guard_replacement(store, AU_MAIN, day, 1, allow=False)
    assert _day_with_summary(store, CU_MAIN, day) == rows
    assert store.damaged().empty
    again = status_table(store, (CU_MAIN,), now=now).set_index("symbol")
    assert again.at[CU, "checks"] == "ok" and again.at[CU, "rows"] == rows


def test_status_and_recent_metrics_from_the_catalog_equal_the_tables(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    days = ["2025-03-03", "2025-03-04"]
    for day in days:
        _day_with_summary(store, CU_MAIN, day)
    recent = recent_metrics(
        store, (CU_MAIN,), days=5, now=pd.Timestamp("2025-03-04 16:00", tz="Asia/Shanghai")
    )
    table = store.read_table(METRICS, [CU])
    cols = ["symbol", "trading_day", "asset", "metric", "value"]
    key = ["trading_day", "asset", "metric"]
    pd.testing.assert_frame_equal(
        recent[cols].sort_values(key).reset_index(drop=True),
        table[cols].astype(object).sort_values(key).reset_index(drop=True).astype(recent.dtypes),
    )
    summary = store.read_partition(VALIDATION_SUMMARY, CU, days[-1])
    status = status_table(
        store, (CU_MAIN,), now=pd.Timestamp("2025-03-04 16:00", tz="Asia/Shanghai")
    )
    assert status.at[0, "rows"] == int(summary.at[0, "rows"])
    assert status.at[0, "ingest_rows_per_second"] == 1000.0 + int(summary.at[0, "rows"])


# --------------------------------------------------------------------------- concurrent reads


def _replacer(root: str, stop_after: int) -> None:
    store = EmbeddedStore(Path(root))
    for i in range(stop_after):
        n = 4000 if i % 2 else 1500
        store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=n, seed=i % 2))


def test_readers_never_fail_during_a_concurrent_replace(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=1500, seed=0))
    expected = {
        1500: conform(tick_frame(CU, DAY1, n=1500, seed=0), TICKS),
        4000: conform(tick_frame(CU, DAY1, n=4000, seed=1), TICKS),
    }
    child = mp.get_context("spawn").Process(target=_replacer, args=(str(tmp_path), 60))
    errors: list[BaseException] = []
    seen: set[int] = set()

    def read_loop(use_table: bool) -> None:
        reader = EmbeddedStore(tmp_path, cache=False)
        while child.is_alive() or not seen:
            try:
                if use_table:
                    got = reader.read_table(TICKS, [CU])
                else:
                    got = reader.read_partition(TICKS, CU, DAY1)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
                return
            pd.testing.assert_frame_equal(got, expected[len(got)])
            seen.add(len(got))

    child.start()
    threads = [threading.Thread(target=read_loop, args=(t,)) for t in (False, True)]
    for t in threads:
        t.start()
    child.join(120)
    for t in threads:
        t.join(60)
    assert child.exitcode == 0
    assert errors == []
    assert seen == {1500, 4000}  # both versions were read while the writer replaced
    assert store.damaged().empty


# --------------------------------------------------------------------------- CLI


def test_cli_reindex_rebuilds_and_reports_corrupt_files(tmp_path: Path, monkeypatch, capsys):
    from ghtrader_assets.cli import main

    monkeypatch.setenv("GHTRADER_STORE", "embedded")
    store = EmbeddedStore(tmp_path / "store")
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=100))
    store.write_partition(TICKS, CU, DAY2, tick_frame(CU, DAY2, n=100))
    assert main(["--data-dir", str(tmp_path), "reindex"]) == 0
    assert "2 partitions checked (2 read in full)" in capsys.readouterr().out
    _truncate(store.partition_path(TICKS, CU, DAY2))
    assert main(["--data-dir", str(tmp_path), "reindex", "--verify"]) == 1
    out = capsys.readouterr().out
    assert f"corrupt: ticks_main_l5 {CU} {DAY2}: cannot be decoded" in out


class _NoCatalog(TimedStore):
    """The same store seen as one without a catalog (as QuestDB is): the readers' table path."""

    def catalog_summary(self, spec, symbols):  # noqa: ANN001, ANN201
        return None

    def catalog_rows(self, spec, symbols, **kwargs):  # noqa: ANN001, ANN003, ANN201
        return None


def test_report_status_and_metrics_from_the_catalog_equal_the_table_path(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, cache=False)
    days = ["2025-03-03", "2025-03-05", "2025-03-06", "2025-03-10"]  # holes on 4th and 7th
    for sym in (CU_MAIN, AU_MAIN):
        for day in days:
            _day_with_summary(store, sym, day)
    gappy = SimulatedSource(seed=3, defects={"gap": True})
    day = dt.date(2025, 3, 11)
    ticks = conform(gappy.ticks(gappy.roll_entry(CU_MAIN, day)), TICKS)
    result = validate_day(ticks, CU_MAIN, day)
    store.write_partition(TICKS, CU, day.isoformat(), ticks)
    store.write_partition(VALIDATION_SUMMARY, CU, day.isoformat(), result.summary)
    assert result.summary.at[0, "verdict_overall"] == "error"

    plain = _NoCatalog(store)
    as_of = dt.date(2025, 3, 14)
    universe = (CU_MAIN, AU_MAIN, MainSymbol("DCE", "m"))
    fast = coverage_report(store, universe, as_of=as_of)
    slow = coverage_report(plain, universe, as_of=as_of)
    pd.testing.assert_frame_equal(fast, slow)
    cu = fast.set_index("symbol").loc[CU]
    assert (cu["days_present"], cu["missing_days"], cu["days_behind"]) == (5, 2, 3)
    assert cu["blocking_failure_days"] == 1
    assert cu["worst_day"].startswith("2025-03-11 blocked")
    assert cu["missing_sample"] == "2025-03-04, 2025-03-07"

    now = pd.Timestamp("2025-03-14 16:00", tz="Asia/Shanghai")
    pd.testing.assert_frame_equal(
        status_table(store, universe, now=now), status_table(plain, universe, now=now)
    )


def test_cli_coverage_shows_a_truncated_file_as_corrupt_with_verify(
    tmp_path: Path, monkeypatch, capsys
):
    from ghtrader_assets.cli import main

    monkeypatch.setenv("GHTRADER_STORE", "embedded")
    monkeypatch.setenv("GHTRADER_UNIVERSE", f"{CU},{AU}")
    store = EmbeddedStore(tmp_path / "store")
    for sym in (CU, AU):
        store.write_partition(TICKS, sym, DAY1, tick_frame(sym, DAY1, n=100))
    _truncate(store.partition_path(TICKS, CU, DAY1))

    def corrupt_column(out: str) -> dict[str, str]:
        report = out.split("\n\n")[0]  # the per-symbol report; recent days follow
        lines = [line.split("|") for line in report.splitlines() if line.startswith("| ")]
        header = [c.strip() for c in lines[0]]
        at = header.index("corrupt_days")
        return {row[1].strip(): row[at].strip() for row in lines[1:]}

    assert main(["--data-dir", str(tmp_path), "coverage"]) == 0
    assert corrupt_column(capsys.readouterr().out) == {CU: "0", AU: "0"}  # not yet read
    assert main(["--data-dir", str(tmp_path), "coverage", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "verify: 2 partitions checked (1 read in full)" in out
    assert corrupt_column(out) == {CU: "1", AU: "0"}


def test_corrupt_small_partitions_never_block_the_writers_that_replace_them(
    tmp_path: Path,
) -> None:
    from ghtrader_assets.manifest import withdraw_manifest
    from ghtrader_assets.schema import MANIFESTS, SKIP_LEDGER
    from ghtrader_assets.sources.skip_ledger import SkipLedger

    store = EmbeddedStore(tmp_path / "store", cache=False)
    day = "2025-03-04"
    _day_with_summary(store, CU_MAIN, day)
    ledger = SkipLedger(store)
    ledger.record(CU, day, "not_listed", "test", source="test")
    for spec in (SKIP_LEDGER, METRICS):
        store.partition_path(spec, CU, day).write_bytes(b"garbage")
    manifest = store.partition_path(MANIFESTS, CU, day)
    manifest.parent.mkdir(parents=True)
    manifest.write_bytes(b"garbage")

    report = coverage_report(store, (CU_MAIN, AU_MAIN), as_of=dt.date(2025, 3, 4))
    assert report.set_index("symbol").at[CU, "skip_reasons"] == "unreadable ledger x1"
    record_metrics(store, CU, day, {"ticks": {"ingest_rows_per_second": 5.0}})
    assert store.read_partition(METRICS, CU, day)["value"].tolist() == [5.0]
    assert ledger.record(CU, day, "not_listed", "again", source="test").attempts == 1
    assert withdraw_manifest(store, tmp_path / "manifests", CU_MAIN, day) is True
    assert store.read_partition(MANIFESTS, CU, day).empty
    assert store.verify(full=True).corrupt == []
