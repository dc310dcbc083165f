"""Reads of the charging app, scoped to who may see them."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import User
from accounts.permissions import user_organisation_ids, user_reads_everything
from charging.models import Bill, ChargingSession, ChargingStation, DriverToken, Receipt, Tariff


def station_list(*, user: User) -> QuerySet[ChargingStation]:
    """Stations are public to every signed-in user (drivers look for them)."""
    return ChargingStation.objects.select_related("device__organisation", "meter", "tariff")


def tariff_list(*, user: User) -> QuerySet[Tariff]:
    """Tariffs are public to every signed-in user (a driver sees the price before charging)."""
    return Tariff.objects.all()


def token_list(*, user: User) -> QuerySet[DriverToken]:
    """Tokens of the user's organisations (all for the issuing body and auditors)."""
    if user_reads_everything(user):
        return DriverToken.objects.all()
    return DriverToken.objects.filter(organisation_id__in=user_organisation_ids(user))


def session_list(*, user: User) -> QuerySet[ChargingSession]:
    """Sessions whose station operator or driver the user belongs to."""
    sessions = ChargingSession.objects.select_related(
        "station__device__organisation", "station__device__grid_area", "token"
    )
    if user_reads_everything(user):
        return sessions
    orgs = user_organisation_ids(user)
    return sessions.filter(
        Q(station__device__organisation_id__in=orgs) | Q(driver_organisation_id__in=orgs)
    )


def bill_list(*, user: User) -> QuerySet[Bill]:
    """Bills of the sessions the user may see."""
    return Bill.objects.filter(session__in=session_list(user=user)).select_related("session")


def receipt_list(*, user: User) -> QuerySet[Receipt]:
    """Receipts of the sessions the user may see, with their hours and statements."""
    return (
        Receipt.objects.filter(session__in=session_list(user=user))
        .select_related("bill", "session")
        .prefetch_related("hours__retirement")
    )
