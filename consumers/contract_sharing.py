"""What the contracts app's `community_sharing` kind asks of a community, through its
`contracts.community_sharing` hook (registered in `ConsumersConfig.ready`; layer-6 apps do
not import each other): who the members are and the key, what the operator holds, and
the distribution itself, which is this app's own service and event
(`services.distribution`), run as the community's operator like the periodic run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q

from accounts.models import Account
from certificates.models import Bundle
from consumers import errors
from consumers.intervals import community_period_members
from consumers.models import Community, CommunityDistribution, CommunityMember
from consumers.services.distribution import _operator_user, community_certificates_distribute

HOUR = dt.timedelta(hours=1)


def _share(member: CommunityMember) -> str | None:
    if member.share_numerator is None or not member.share_denominator:
        return None
    return f"{member.share_numerator}/{member.share_denominator}"


def snapshot(
    *, community_id: int, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, Any] | None:
    """The community's members (current ones, or those of any part of [start, end)) and key."""
    community = Community.objects.filter(pk=community_id).first()
    if community is None:
        return None
    if start is None or end is None:
        members = list(
            community.members.filter(left_at__isnull=True).select_related("account").order_by("pk")
        )
    else:
        members = community_period_members(community, start, end)
    accounts = dict(
        Account.objects.filter(pk__in=[m.account_id for m in members]).values_list("pk", "number")
    )
    return {
        "community_id": community.pk,
        "operator_organisation_id": community.organisation_id,
        "key_kind": community.key_kind,
        "members": [
            {
                "member_id": member.pk,
                "organisation_id": member.organisation_id,
                "account": accounts[member.account_id],
                "share": _share(member) if community.key_kind == Community.KeyKind.STATIC else None,
                "whole": start is None
                or (
                    member.joined_at <= start and (member.left_at is None or member.left_at >= end)
                ),
            }
            for member in members
        ],
    }


def preview(*, community_id: int, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Reads only, no member's consumption: the Wh of the shared devices' hourly
    certificates of [start, end) the operator still holds, and the hours distributed."""
    community = Community.objects.get(pk=community_id)
    held = (
        Bundle.objects.filter(
            device__community_link__community=community,
            period_start__gte=start,
            period_start__lt=end,
            status=Bundle.Status.ACTIVE,
            account__organisation_id=community.organisation_id,
            account__kind__in=[Account.Kind.TRADING, Account.Kind.ISSUANCE],
        )
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gt=end.date()))
        .values_list("period_start", "period_end", "unit_start", "unit_end")
    )
    held_wh = sum(
        u_end - u_start for p_start, p_end, u_start, u_end in held if p_end - p_start == HOUR
    )
    done = CommunityDistribution.objects.filter(
        community=community, hour__gte=start, hour__lt=end
    ).order_by("hour")
    return {"held_wh": held_wh, "already_distributed": list(done.values_list("hour", flat=True))}


def distribute(*, community_id: int, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Distribute [start, end) by the community's key as its operator (the first admin or
    operator of its organisation), through `community_certificates_distribute`: the same
    consent checks, locks, moves and `community.certificates_distributed` event."""
    community = Community.objects.filter(pk=community_id).first()
    if community is None:
        raise errors.CommunityNotFound(community_id=community_id)
    actor = _operator_user(community)
    if actor is None:
        raise errors.NotCommunityOperator("The community's organisation has no admin or operator.")
    report = community_certificates_distribute(
        actor=actor, community_id=community_id, start=start, end=end
    )
    return report.as_dict() | {"distribution_ids": [row.pk for row in report.distributions]}


class Provider:
    """The object the contracts hook holds (the three functions above)."""

    snapshot = staticmethod(snapshot)
    preview = staticmethod(preview)
    distribute = staticmethod(distribute)


PROVIDER = Provider()
