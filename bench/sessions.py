"""Sessions benchmark: what resolving a product's sessions as of the day costs.

    python bench/sessions.py [--years 2017-2025] [--repeats 3]

For every listed product and every trading day of ``--years`` (about 95 products x 2,200
days), in the same run:

* ``bare``: ``SessionTimeline.resolve(day, PRODUCT)`` of cnfutures-session-timeline alone;
* ``ours, cold``: :func:`ghtrader_assets.sessions.day_sessions` with an empty cache (timeline
  resolve + our calendar checks + tz-aware windows);
* ``ours, warm``: the same calls again on a working set that fits the per-process cache
  (the first 50,000 product-days: what a backfill step asking again hits);
* ``not_listed_reason``: the cheap listing check the automation and coverage call per day.

The ratio ours/bare is the overhead of our layer. Figures are printed, never asserted; the
machine may be shared, so each figure is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import median_seconds  # noqa: E402

from ghtrader_assets import sessions  # noqa: E402
from ghtrader_assets.calendar import trading_days  # noqa: E402
from ghtrader_assets.products import PRODUCTS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--years", default="2017-2025")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    first, last = (int(y) for y in args.years.split("-"))
    days = trading_days(f"{first}-01-01", f"{last}-12-31")
    timeline = sessions.timeline()
    pairs = [(e, p, d) for (e, p) in PRODUCTS for d in days if d >= sessions.listing_date(e, p)]

    def bare() -> None:
        for _, p, d in pairs:
            timeline.resolve(d, p.upper())

    def ours() -> None:
        for e, p, d in pairs:
            sessions.day_sessions(e, p, d)

    warm_pairs = pairs[:50_000]

    def ours_warm() -> None:
        for e, p, d in warm_pairs:
            sessions.day_sessions(e, p, d)

    def listed() -> None:
        for e, p, d in pairs:
            sessions.not_listed_reason(e, p, d)

    clear = sessions.day_sessions.cache_clear
    n = len(pairs)
    figures = {
        "bare timeline.resolve": median_seconds(bare, args.repeats),
        "ours, cold cache": median_seconds(ours, args.repeats, before=clear),
        "ours, warm cache": median_seconds(ours_warm, args.repeats) * n / len(warm_pairs),
        "not_listed_reason": median_seconds(listed, args.repeats),
    }
    base = figures["bare timeline.resolve"]
    print(
        f"{n:,} product-days ({len(PRODUCTS)} products, {first}-{last}), median of {args.repeats}"
    )
    print(f"{'path':<24} {'seconds':>9} {'us/call':>9} {'vs bare':>8}  (warm: scaled to all)")
    for name, seconds in figures.items():
        print(f"{name:<24} {seconds:>9.3f} {seconds / n * 1e6:>9.2f} {seconds / base:>7.2f}x")


if __name__ == "__main__":
    main()
