"""Several TqSdk accounts in one code location: which account downloads which symbol.

One Shinnytech account allows a few concurrent downloads (the pool limit, 4). A backfill of
the full universe over years needs more, so ``GHTRADER_TQ_ACCOUNTS`` splits the universe
between named accounts::

    GHTRADER_TQ_ACCOUNTS="a:SHFE,INE;b:DCE,CZCE,GFEX,KQ.m@SHFE.ag"

Each ``;``-separated entry is ``<account>:<items>``; an item is a main symbol of
``GHTRADER_UNIVERSE`` (``KQ.m@SHFE.ag``), an exchange (``SHFE``: its universe symbols) or
``*`` (every universe symbol no other item names). The most specific item decides: a symbol
named explicitly goes to that account even when its exchange is on another (above: ``ag``
on ``b``, the rest of SHFE on ``a``). Every universe symbol must end up on exactly one
account; there is **no implicit default account**: a symbol no item covers is an error
naming it, because a silent default would quietly pile new symbols on one account. Write
``*`` on one account to have that default explicitly.

Per account ``x`` (names: lower-case letters, digits and ``_``, starting with a letter):

* Dagster pool ``tqsdk_x``: every source-calling step of its symbols claims a slot there, so
  the account's cap holds across all runs and pods (``dagster instance concurrency set``);
* credentials ``GHTRADER_TQ_USER_X`` / ``GHTRADER_TQ_PASSWORD_X``, read only through Dagster
  ``EnvVar`` by the source resource (:mod:`ghtrader_assets.resources`), never logged;
* its own tqsdk cache root ``<GHTRADER_TQ_CACHE_DIR>/x`` (per-source directories below it).

Unset, the single-account form is unchanged: ``GHTRADER_TQ_USER`` /
``GHTRADER_TQ_PASSWORD`` and the pool ``tqsdk``. Setting both forms is refused (which one
would be meant is a guess).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ghtrader_assets.config import SettingsError
from ghtrader_assets.symbols import EXCHANGES, MainSymbol, SymbolError, parse_main_symbol

VARIABLE = "GHTRADER_TQ_ACCOUNTS"
SINGLE_USER = "GHTRADER_TQ_USER"
SINGLE_PASSWORD = "GHTRADER_TQ_PASSWORD"
#: Pool of every source step when there is one account (or the source is not TqSdk).
SINGLE_POOL = "tqsdk"
REST = "*"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_EXAMPLE = "e.g. a:SHFE,INE;b:DCE,CZCE,KQ.m@SHFE.ag (account:symbols|exchanges|*;...)"


class AccountsError(SettingsError):
    """``GHTRADER_TQ_ACCOUNTS`` cannot be used; the message names the entry or symbol."""


@dataclass(frozen=True)
class TqAccount:
    """One named account and the universe symbols it downloads."""

    name: str
    symbols: tuple[MainSymbol, ...]

    @property
    def pool(self) -> str:
        """The Dagster pool that caps this account's concurrent downloads."""
        return f"{SINGLE_POOL}_{self.name}"

    @property
    def resource_suffix(self) -> str:
        return self.name.upper()

    @property
    def user_variable(self) -> str:
        return f"{SINGLE_USER}_{self.resource_suffix}"

    @property
    def password_variable(self) -> str:
        return f"{SINGLE_PASSWORD}_{self.resource_suffix}"


@dataclass(frozen=True)
class TqAccounts:
    """The accounts of ``GHTRADER_TQ_ACCOUNTS``, in the order written, each with its symbols."""

    accounts: tuple[TqAccount, ...]

    def __post_init__(self) -> None:
        seen: dict[MainSymbol, str] = {}
        for account in self.accounts:
            for symbol in account.symbols:
                if symbol in seen:
                    raise AccountsError(
                        f"{VARIABLE}: {symbol.raw} is on accounts {seen[symbol]!r} and "
                        f"{account.name!r}; a symbol downloads under exactly one account"
                    )
                seen[symbol] = account.name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.accounts)

    def account_of(self, symbol: MainSymbol) -> TqAccount:
        """The account that downloads ``symbol``; a symbol on none is an error naming it."""
        for account in self.accounts:
            if symbol in account.symbols:
                return account
        raise AccountsError(f"{VARIABLE}: {symbol.raw} is on no account ({', '.join(self.names)})")

    def pool_of(self, symbol: MainSymbol) -> str:
        return self.account_of(symbol).pool

    @property
    def pools(self) -> tuple[str, ...]:
        return tuple(a.pool for a in self.accounts)

    def missing_credentials(self, env: Mapping[str, str]) -> list[str]:
        """The credential variables not set (or blank) in ``env``; values are never read
        further than for presence."""
        return [
            var
            for a in self.accounts
            for var in (a.user_variable, a.password_variable)
            if not env.get(var, "").strip()
        ]


def _entries(text: str) -> Iterable[tuple[str, list[str]]]:
    for raw in text.split(";"):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, items = entry.partition(":")
        name = name.strip()
        if not sep or not name:
            raise AccountsError(f"{VARIABLE}: entry {entry!r} is not account:items; {_EXAMPLE}")
        if not _NAME.match(name):
            raise AccountsError(
                f"{VARIABLE}: account name {name!r} must be lower-case letters, digits or _, "
                "starting with a letter, at most 32 characters (it names the pool "
                f"tqsdk_<account> and the variables {SINGLE_USER}_<ACCOUNT>)"
            )
        parts = [p.strip() for p in items.split(",") if p.strip()]
        if not parts:
            raise AccountsError(f"{VARIABLE}: account {name!r} lists no symbol; {_EXAMPLE}")
        yield name, parts


def parse_accounts(text: str, universe: Iterable[MainSymbol]) -> TqAccounts:
    """Partition ``universe`` between the accounts ``text`` names (see the module docstring).

    Every error names the entry, account, exchange or symbol at fault.
    """
    universe = tuple(universe)
    in_universe = set(universe)
    explicit: dict[MainSymbol, str] = {}
    by_exchange: dict[str, str] = {}
    rest: str | None = None
    order: list[str] = []
    for name, items in _entries(text):
        if name in order:
            raise AccountsError(f"{VARIABLE}: account {name!r} appears twice; list it once")
        order.append(name)
        for item in items:
            if (item == REST and rest == name) or (
                item.upper() in EXCHANGES and by_exchange.get(item.upper()) == name
            ):
                raise AccountsError(
                    f"{VARIABLE}: account {name!r} lists {item} twice; list it once"
                )
            if item == REST:
                if rest is not None:
                    raise AccountsError(
                        f"{VARIABLE}: '*' (the rest of the universe) is on accounts {rest!r} "
                        f"and {name!r}; give it to one"
                    )
                rest = name
            elif item.upper() in EXCHANGES and "@" not in item:
                exchange = item.upper()
                if exchange in by_exchange:
                    raise AccountsError(
                        f"{VARIABLE}: exchange {exchange} is on accounts "
                        f"{by_exchange[exchange]!r} and {name!r}; give it to one (name single "
                        "symbols to move them)"
                    )
                by_exchange[exchange] = name
            else:
                try:
                    symbol = parse_main_symbol(item)
                except SymbolError as exc:
                    raise AccountsError(
                        f"{VARIABLE}: account {name!r}: {item!r} is neither an exchange "
                        f"({', '.join(EXCHANGES)}), '*' nor a main symbol: {exc}"
                    ) from None
                if symbol not in in_universe:
                    raise AccountsError(
                        f"{VARIABLE}: account {name!r} names {symbol.raw}, which is not in "
                        "GHTRADER_UNIVERSE; add it there or remove it here"
                    )
                if explicit.get(symbol) == name:
                    raise AccountsError(
                        f"{VARIABLE}: account {name!r} names {symbol.raw} twice; list it once"
                    )
                if symbol in explicit:
                    raise AccountsError(
                        f"{VARIABLE}: {symbol.raw} is on accounts {explicit[symbol]!r} and "
                        f"{name!r}; a symbol downloads under exactly one account"
                    )
                explicit[symbol] = name
    if not order:
        raise AccountsError(f"{VARIABLE}={text!r} names no account; {_EXAMPLE}")
    owner: dict[MainSymbol, str] = {}
    unassigned: list[str] = []
    for symbol in universe:
        account = explicit.get(symbol) or by_exchange.get(symbol.exchange) or rest
        if account is None:
            unassigned.append(symbol.raw)
        else:
            owner[symbol] = account
    if unassigned:
        raise AccountsError(
            f"{VARIABLE}: no account for {', '.join(unassigned)}; name them (or their "
            "exchange) on an account, or put '*' on the account that takes the rest "
            "(there is no implicit default account)"
        )
    accounts = tuple(
        TqAccount(name, tuple(s for s in universe if owner[s] == name)) for name in order
    )
    idle = [a.name for a in accounts if not a.symbols]
    if idle:
        raise AccountsError(
            f"{VARIABLE}: account(s) {', '.join(map(repr, idle))} get no symbol of "
            "GHTRADER_UNIVERSE; remove them or give them symbols"
        )
    return TqAccounts(accounts)


def accounts_from_env(
    env: Mapping[str, str], universe: Iterable[MainSymbol], source: str
) -> TqAccounts | None:
    """The multi-account set-up, or ``None`` for the single-account form (variable unset).

    Refuses the variable with a source other than TqSdk, alongside the single-account
    credentials (which account downloads what would be a guess), and when an account's
    ``GHTRADER_TQ_USER_<ACCOUNT>`` / ``GHTRADER_TQ_PASSWORD_<ACCOUNT>`` is not set: unlike the
    single-account form, naming an account is a promise to run it, so a missing credential
    fails when the definitions load instead of in every step of that account.
    """
    text = env.get(VARIABLE, "").strip()
    if not text:
        return None
    if source != "tqsdk":
        raise AccountsError(
            f"{VARIABLE} is set but GHTRADER_SOURCE={source}: accounts only apply to "
            "GHTRADER_SOURCE=tqsdk; unset one of them"
        )
    both = [v for v in (SINGLE_USER, SINGLE_PASSWORD) if env.get(v, "").strip()]
    if both:
        raise AccountsError(
            f"{VARIABLE} is set together with {' and '.join(both)}: with several accounts "
            f"each has {SINGLE_USER}_<ACCOUNT> / {SINGLE_PASSWORD}_<ACCOUNT>; unset "
            f"{' and '.join(both)} (or {VARIABLE} for the single-account form)"
        )
    accounts = parse_accounts(text, universe)
    missing = accounts.missing_credentials(env)
    if missing:  # presence only: the values stay with Dagster's EnvVar
        raise AccountsError(
            f"{VARIABLE} names accounts without credentials: set {', '.join(missing)}"
        )
    return accounts


@functools.lru_cache(maxsize=8)
def _parsed(text: str, universe_text: str | None) -> TqAccounts:
    from ghtrader_assets.config import parse_universe_setting

    return parse_accounts(text, parse_universe_setting(universe_text))


def account_in_env(symbol: MainSymbol, env: Mapping[str, str] | None = None) -> str | None:
    """The account ``GHTRADER_TQ_ACCOUNTS`` gives ``symbol`` in this process, ``None`` when
    the variable is unset (single-account form).

    Why: the step's pool (``tqsdk_<account>``) was fixed from this variable when the
    definitions loaded in this process, while the source resource picks credentials from
    its config, which a run config (launchpad, ``execute_in_process(run_config=...)``) can
    change. The resource compares the two, so a symbol never downloads under one account's
    credentials while claiming another account's pool (which would let an account exceed
    its cap).
    """
    env = os.environ if env is None else env
    text = env.get(VARIABLE, "").strip()
    if not text:
        return None
    return _parsed(text, env.get("GHTRADER_UNIVERSE")).account_of(symbol).name
