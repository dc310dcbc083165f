"""The market's append-only tables: the journal (entries and their lines) and the trades.

A movement of money or a trade is never edited or deleted; corrections are new entries.
The rule is registry/append_only.py's, as for the ledger.
"""

from registry.append_only import AppendOnlyTables

MARKET_TABLES = AppendOnlyTables(
    app="market",
    tables=("market_journalentry", "market_journalline", "market_trade"),
)
