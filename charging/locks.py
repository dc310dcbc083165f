"""Row locks of the charging app, taken after the certificates app's rows (docs/architecture.md).

Order inside the app: the station (every event of a station queues on it, so two stop
events for one session cannot both bill), then the session.
"""

from charging import errors
from charging.models import Bill, ChargingSession, ChargingStation


def station_lock(station_id: int) -> ChargingStation:
    station = (
        ChargingStation.objects.select_for_update(of=("self",))
        .select_related("device__organisation", "device__grid_area", "tariff")
        .filter(pk=station_id)
        .first()
    )
    if station is None:
        raise errors.StationNotFound(station_id=station_id)
    return station


def session_lock(session_id: int) -> ChargingSession:
    session = (
        ChargingSession.objects.select_for_update(of=("self",))
        .select_related("station__device__organisation", "station__device__grid_area")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise errors.SessionNotFound(session_id=session_id)
    return session


def bill_lock(bill_id: int) -> Bill:
    """A bill being settled (its payment then locks the market's settlement accounts)."""
    bill = (
        Bill.objects.select_for_update(of=("self",))
        .select_related("session__station__device")
        .filter(pk=bill_id)
        .first()
    )
    if bill is None:
        raise errors.BillNotFound(bill_id=bill_id)
    return bill
