"""Run ``ghtrader`` commands in one process against the in-memory QuestDB stand-in.

    python -m ghtrader_assets_tests.questdb_cli_driver demo --days 1 -- status -- coverage

The CLI runs exactly as a user runs it with ``GHTRADER_STORE=questdb`` (settings from the
environment, ``EnvVar`` resolution by the store resource, Dagster runs, the summary, status
and coverage reads), with two substitutions that let an in-memory server serve every
command: the store resource builds its :class:`QuestDBStore` over one shared
:class:`FakeQuestDB` instead of network clients (after resolving its settings the normal
way), and the demo's days run one after the other in this process instead of in worker
processes. After each command it prints the settings the store was built with, so the test
can check that the host and password came from the environment, not from variable names.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def main(argv: list[str]) -> int:
    from ghtrader_assets import cli, runner
    from ghtrader_assets.resources import StoreResource
    from ghtrader_assets.stores.questdb import QuestDBStore
    from ghtrader_assets_tests.fake_questdb import FakeQuestDB

    db = FakeQuestDB()
    built: list[Any] = []

    def create(self: StoreResource) -> QuestDBStore:
        settings = self.questdb_settings()  # the resource's own resolution, unchanged
        built.append(settings)
        store = QuestDBStore(
            settings,
            sql=db,
            sender_factory=db.sender,
            qwp_connect=lambda _s: db.qwp(),
            sleep=lambda _s: None,
        )
        store.ensure_tables()
        return store

    StoreResource._create = create  # type: ignore[method-assign]
    cli.run_days = lambda days, workers, **_: [runner.run_day(d) for d in days]  # type: ignore[assignment]

    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--":
            commands.append([])
        else:
            commands[-1].append(arg)
    worst = 0
    for command in commands:
        print(f"=== ghtrader {' '.join(command)}", flush=True)
        code = cli.main(command)
        worst = max(worst, code)
        password = os.environ.get("GHTRADER_QDB_PASSWORD", "")
        for s in built:
            print(
                f"=== store host={s.host} pg_port={s.pg_port} "
                f"password_from_env={bool(password) and s.password == password}"
            )
        built.clear()
        print(f"=== exit {code}", flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
