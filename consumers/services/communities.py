"""Energy communities: creation, members joining and leaving, the allocation key, devices.

Locking: the community row first, then its members in primary-key order
(consumers.locks); every change to membership or key serialises on the community.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from fractions import Fraction

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, Membership, Organisation, User
from accounts.permissions import user_can_act_for
from assets.models import Device, DeviceOwner, GridArea, Meter
from assets.validation import parse_share
from consumers import errors, events
from consumers.locks import community_lock, members_lock
from consumers.models import Community, CommunityDevice, CommunityMember, Site, SiteMeter
from ledger.services import ledger_append
from registry.errors import InvalidInput

# Community.internal_price_minor_per_kwh is a PositiveIntegerField: 32 bits on PostgreSQL.
PRICE_MAX = 2**31 - 1

QUARTER_HOUR = 15 * 60


def _require_admin(actor: User, community: Community) -> None:
    if not user_can_act_for(actor, community.organisation, role=Membership.Role.ADMIN):
        raise errors.NotCommunityAdmin()


def _aligned(moment: dt.datetime) -> bool:
    return not moment.microsecond and int(moment.timestamp()) % QUARTER_HOUR == 0


def _check_moment(name: str, moment: dt.datetime) -> None:
    if moment.tzinfo is None or not _aligned(moment):
        raise errors.MembershipInvalid(fields={name: ["An aware time on a quarter hour."]})


@transaction.atomic
def community_create(
    *,
    actor: User,
    organisation_id: int,
    name: str,
    grid_area_id: int,
    key_kind: str,
    internal_price_minor_per_kwh: int,
    currency: str = "EUR",
) -> Community:
    """An organisation's admin sets up a community in one grid area."""
    organisation = Organisation.objects.select_for_update().filter(pk=organisation_id).first()
    if organisation is None or not user_can_act_for(
        actor, organisation, role=Membership.Role.ADMIN
    ):
        raise errors.NotOrganisationAdmin()
    problems: dict[str, list[str]] = {}
    if not (name or "").strip():
        problems["name"] = ["required"]
    if key_kind not in Community.KeyKind.values:
        problems["key_kind"] = [f"One of {', '.join(Community.KeyKind.values)}."]
    if (
        not isinstance(internal_price_minor_per_kwh, int)
        or not 0 <= internal_price_minor_per_kwh <= PRICE_MAX
    ):
        problems["internal_price_minor_per_kwh"] = ["A non-negative integer (minor units)."]
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isupper()):
        problems["currency"] = ["ISO 4217 code, such as EUR."]
    area = GridArea.objects.filter(pk=grid_area_id).first()
    if area is None:
        problems["grid_area_id"] = ["unknown grid area"]
    if problems:
        raise InvalidInput(fields=problems)
    community = Community.objects.create(
        organisation=organisation,
        name=name.strip(),
        grid_area=area,
        key_kind=key_kind,
        internal_price_minor_per_kwh=internal_price_minor_per_kwh,
        currency=currency,
    )
    ledger_append(
        kind=events.COMMUNITY_CREATED,
        actor=actor,
        subject=[community, organisation],
        data={
            "community_id": community.pk,
            "organisation_id": organisation.pk,
            "grid_area_id": area.pk,
            "key_kind": key_kind,
            "internal_price_minor_per_kwh": internal_price_minor_per_kwh,
            "currency": currency,
        },
    )
    return community


def _member_meter(organisation: Organisation, meter_id: int, site: Site | None) -> Meter:
    meter = Meter.objects.select_related("device").filter(pk=meter_id).first()
    if meter is None or meter.device.organisation_id != organisation.pk:
        raise errors.MembershipUnmet(fields={"consumption_meter_id": ["one of your meters"]})
    if site is not None:
        link = SiteMeter.objects.filter(meter=meter, site=site).first()
        if link is None or link.role != SiteMeter.Role.IMPORT:
            raise errors.MembershipUnmet(
                fields={"consumption_meter_id": ["the import meter of the site"]}
            )
    return meter


@transaction.atomic
def community_member_join(
    *,
    actor: User,
    community_id: int,
    organisation_id: int,
    consumption_meter_id: int,
    account_id: int,
    joined_at: dt.datetime | None = None,
    site_id: int | None = None,
) -> CommunityMember:
    """A household or organisation joins from `joined_at` (a quarter hour; mid-period is fine)."""
    community = community_lock(community_id)
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None or not user_can_act_for(
        actor, organisation, role=Membership.Role.ADMIN
    ):
        raise errors.NotOrganisationAdmin("Only an admin of the joining organisation joins it.")
    now = timezone.now()
    joined_at = joined_at or now.replace(
        minute=now.minute - now.minute % 15, second=0, microsecond=0
    )
    _check_moment("joined_at", joined_at)
    site = None
    if site_id is not None:
        site = Site.objects.filter(pk=site_id, household__organisation=organisation).first()
        if site is None:
            raise errors.MembershipUnmet(fields={"site_id": ["one of your sites"]})
        if site.grid_area_id != community.grid_area_id:
            raise errors.MembershipUnmet(fields={"site_id": ["in the community's grid area"]})
    meter = _member_meter(organisation, consumption_meter_id, site)
    account = Account.objects.filter(pk=account_id, organisation=organisation).first()
    if account is None or not account.is_open:
        raise errors.MembershipUnmet(fields={"account_id": ["an open account of yours"]})
    members_lock(community.members.values_list("pk", flat=True))
    clash = community.members.filter(organisation=organisation).filter(
        Q(left_at__isnull=True) | Q(left_at__gt=joined_at)
    )
    if clash.exists():
        raise errors.MembershipConflict(organisation_id=organisation.pk)
    member = CommunityMember.objects.create(
        community=community,
        organisation=organisation,
        site=site,
        consumption_meter=meter,
        account=account,
        joined_at=joined_at,
    )
    ledger_append(
        kind=events.COMMUNITY_MEMBER_JOINED,
        actor=actor,
        subject=[member, community, organisation],
        data={
            "community_id": community.pk,
            "member_id": member.pk,
            "organisation_id": organisation.pk,
            "site_id": site.pk if site else None,
            "consumption_meter_id": meter.pk,
            "account_id": account.pk,
            "joined_at": joined_at,
        },
    )
    return member


@transaction.atomic
def community_member_leave(
    *, actor: User, member_id: int, left_at: dt.datetime | None = None
) -> CommunityMember:
    """The member (or the community's admin) ends the membership at `left_at`."""
    community_id = (
        CommunityMember.objects.filter(pk=member_id).values_list("community_id", flat=True).first()
    )
    if community_id is None:
        raise errors.CommunityMemberNotFound(member_id=member_id)
    community = community_lock(community_id)
    (member,) = members_lock([member_id])
    if not (
        user_can_act_for(actor, member.organisation, role=Membership.Role.ADMIN)
        or user_can_act_for(actor, community.organisation, role=Membership.Role.ADMIN)
    ):
        raise errors.NotCommunityAdmin()
    if member.left_at is not None:
        raise errors.MembershipConflict("The member has already left.", member_id=member.pk)
    now = timezone.now()
    left_at = left_at or now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    _check_moment("left_at", left_at)
    if left_at <= member.joined_at:
        raise errors.MembershipUnmet(fields={"left_at": ["after joined_at"]})
    member.left_at = left_at
    member.save(update_fields=["left_at"])
    ledger_append(
        kind=events.COMMUNITY_MEMBER_LEFT,
        actor=actor,
        subject=[member, community],
        data={"community_id": community.pk, "member_id": member.pk, "left_at": left_at},
    )
    return member


def _parse_share(value: object) -> Fraction:
    """A share as co-owners give theirs ("1/3", "0.25"; assets.validation.parse_share):
    bounded digits, where Fraction() of any text took "1e-999999999" and seconds of CPU."""
    try:
        return parse_share(value)
    except ValueError as refused:
        raise errors.AllocationKeyInvalid(fields={"shares": [str(refused)]}) from None


_MEMBER_ID = re.compile(r"[1-9][0-9]{0,17}")


def _shares_by_member(shares: Mapping[int | str, object], wanted: set[int]) -> dict[int, object]:
    """The shares keyed by member id. A key that is no id in its canonical spelling (a
    JSON key is text: "x", "01", "٣") names no current member."""
    by_member = {}
    for key, value in shares.items():
        if not _MEMBER_ID.fullmatch(str(key)) or isinstance(key, bool):
            raise errors.AllocationKeyUnmet(
                "Give a share for every current member, by member id, and no one else.",
                members=sorted(wanted),
            )
        by_member[int(key)] = value
    return by_member


@transaction.atomic
def community_key_set(
    *, actor: User, community_id: int, key_kind: str, shares: Mapping[int, object] | None = None
) -> Community:
    """Choose the allocation key; a static key gives every current member a share, sum 1."""
    community = community_lock(community_id)
    _require_admin(actor, community)
    if key_kind not in Community.KeyKind.values:
        raise errors.AllocationKeyInvalid(fields={"key_kind": list(Community.KeyKind.values)})
    current = members_lock(
        community.members.filter(left_at__isnull=True).values_list("pk", flat=True)
    )
    data_shares: dict[str, str] = {}
    if key_kind == Community.KeyKind.STATIC:
        wanted = {member.pk for member in current}
        shares = _shares_by_member(shares or {}, wanted)
        if set(shares) != wanted:
            raise errors.AllocationKeyUnmet(
                "Give a share for every current member and no one else.",
                members=sorted(wanted),
            )
        parsed = {pk: _parse_share(value) for pk, value in shares.items()}
        total = sum(parsed.values(), Fraction(0))
        if total != 1:
            raise errors.AllocationKeyUnmet(total=str(total))
        for member in current:
            share = parsed[member.pk]
            member.share_numerator, member.share_denominator = share.numerator, share.denominator
            member.save(update_fields=["share_numerator", "share_denominator"])
            data_shares[str(member.pk)] = f"{share.numerator}/{share.denominator}"
    community.key_kind = key_kind
    community.save(update_fields=["key_kind"])
    ledger_append(
        kind=events.COMMUNITY_KEY_SET,
        actor=actor,
        # a static key sets every current member's share
        subject=[community, *(("community_member", pk) for pk in data_shares)],
        data={"community_id": community.pk, "key_kind": key_kind, "shares": data_shares},
    )
    return community


@transaction.atomic
def community_device_add(*, actor: User, community_id: int, device_id: int) -> CommunityDevice:
    """Share a device whose co-owners are all current members, in the community's area."""
    community = community_lock(community_id)
    _require_admin(actor, community)
    device = Device.objects.filter(pk=device_id).first()
    if device is None or device.is_storage:
        raise errors.DeviceNotShareable(fields={"device_id": ["a production device"]})
    if device.grid_area_id != community.grid_area_id:
        raise errors.DeviceNotShareable("The device is in another grid area.")
    if CommunityDevice.objects.filter(device=device).exists():
        raise errors.DeviceNotShareable("The device is already shared by a community.")
    owners = set(
        DeviceOwner.objects.filter(device=device).values_list("organisation_id", flat=True)
    )
    members = set(
        community.members.filter(left_at__isnull=True).values_list("organisation_id", flat=True)
    )
    if not owners or not owners <= members | {community.organisation_id}:
        raise errors.DeviceNotShareable(
            "Every co-owner must be a member (or the community's operator).",
            not_members=sorted(owners - members - {community.organisation_id}),
        )
    link = CommunityDevice.objects.create(community=community, device=device)
    ledger_append(
        kind=events.COMMUNITY_DEVICE_ADDED,
        actor=actor,
        subject=[community, device],
        data={"community_id": community.pk, "device_id": device.pk},
    )
    return link
