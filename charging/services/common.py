"""Permission checks and settlement hand-off shared by the charging services."""

from __future__ import annotations

from collections.abc import Callable

from accounts.models import User
from accounts.permissions import user_can_act_for
from charging import errors
from charging.models import Bill, ChargingStation

# Bills are computed here in integer minor units; moving the money waits for the market app
# (its settlement accounts). The market registers a callable here from its AppConfig.ready();
# it is called with each new Bill inside the billing transaction and may set
# `bill.settlement` to settled. While nothing is registered, bills stay `pending`.
# (A plain list, not a registry.hooks.Hook yet: the hook test requires a registration.)
BILL_SETTLERS: list[Callable[[Bill], None]] = []


def bill_settle(bill: Bill) -> None:
    for settle in BILL_SETTLERS:
        settle(bill)


def require_operator(actor: User, station: ChargingStation) -> None:
    if not user_can_act_for(actor, station.device.organisation):
        raise errors.NotStationOperator(station_id=station.pk)
