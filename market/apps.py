from django.apps import AppConfig


def _units_of(kind: str, data: dict) -> list[dict]:
    return data.get("units", [])


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = "Market"

    def ready(self) -> None:
        # The certificates replay follows the units the market reserves and delivers
        # (through the public reservation service, which appends no event of its own),
        # and replay_ledger rebuilds the market's balances and orders after it.
        from certificates.replay import REPLAY_EXTENSIONS, UNIT_EVENT_SOURCES
        from market.events import (
            ORDER_AMENDED,
            ORDER_CANCELLED,
            ORDER_PLACED,
            SLOT_CERTIFICATES_DELIVERED,
            SLOT_SETTLED,
        )
        from market.replay import replay_market
        from market.selectors import energy_cleared_prices, energy_index_clearings
        from market.services.payments import (
            charging_bill_pay,
            contract_obligation_pay,
            contract_obligations_lock,
        )
        from market.triggers import MARKET_TABLES
        from registry.append_only import APPEND_ONLY_TABLES
        from registry.hooks import HOOKS

        UNIT_EVENT_SOURCES.register(
            (
                (
                    ORDER_PLACED,
                    ORDER_AMENDED,
                    ORDER_CANCELLED,
                    SLOT_SETTLED,
                    SLOT_CERTIFICATES_DELIVERED,
                ),
                _units_of,
            )
        )
        REPLAY_EXTENSIONS.register(replay_market)
        APPEND_ONLY_TABLES.register(MARKET_TABLES)
        # Money moves for contracts and charging. Layer-6 apps do not import each other, so
        # the hooks are found by name; contracts and charging come before the market in
        # INSTALLED_APPS, so their ready() has defined them (a KeyError here says otherwise).
        HOOKS["contracts.settlement_handlers"].register(contract_obligation_pay)
        HOOKS["contracts.settlement_locks"].register(contract_obligations_lock)
        HOOKS["charging.bill_settlers"].register(charging_bill_pay)
        # Community bills at market prices: consumers comes before the market in
        # INSTALLED_APPS, so its price hook is defined (by consumers.pricing, imported by
        # its ready()) before this runs.
        HOOKS["consumers.price_lookups"].register(energy_cleared_prices)
        # Indexed PPAs: the contracts app defines the hook (contracts.kinds.pricing, imported
        # by its ready(), before this one runs).
        HOOKS["contracts.index_prices"].register(energy_index_clearings)
