import pytest

from market.models import (
    JournalEntry,
    JournalLine,
    Order,
    SettlementAccount,
    SlotClearing,
    SlotSettlement,
    SlotSettlementLine,
    Trade,
)
from tests.registry.support import row_counts

MONEY_MODELS = (
    SettlementAccount,
    JournalEntry,
    JournalLine,
    Order,
    Trade,
    SlotClearing,
    SlotSettlement,
    SlotSettlementLine,
)


def balances() -> list[tuple]:
    return list(SettlementAccount.objects.order_by("pk").values_list("pk", "available", "reserved"))


def snapshot() -> dict:
    """Rows and balances of the market, the bundles and the event queue."""
    from certificates.models import Bundle

    return {
        "rows": row_counts(*MONEY_MODELS, Bundle),
        "balances": balances(),
        "orders": list(
            Order.objects.order_by("pk").values_list(
                "pk",
                "status",
                "filled_wh",
                "quantity_wh",
                "limit_price",
                "seq",
                "reserved_minor",
                "clearing_id",
            )
        ),
        "bundles": list(Bundle.objects.order_by("pk").values_list("pk", "account_id", "status")),
    }


@pytest.fixture
def refused():
    """Call, expect the domain error `code` with `status`, and check nothing changed."""
    from registry.errors import DomainError

    def check(call, code: str, status: int):
        before = snapshot()
        with pytest.raises(DomainError) as info:
            call()
        assert (info.value.code, info.value.status) == (code, status), info.value.detail
        assert snapshot() == before
        return info.value

    return check
