"""Row locks of the consumers app, always in primary-key order.

Order across the app: household, then site, then consent; community, then its members.
A service that also calls into assets or certificates takes these locks first.
"""

from collections.abc import Iterable

from consumers import errors
from consumers.models import Community, CommunityMember, Consent, Household, Site


def household_lock(household_id: int) -> Household:
    household = Household.objects.select_for_update().filter(pk=household_id).first()
    if household is None:
        raise errors.HouseholdNotFound(household_id=household_id)
    return household


def site_lock(site_id: int) -> Site:
    """The site, after its household (the order every service uses)."""
    household_id = Site.objects.filter(pk=site_id).values_list("household_id", flat=True).first()
    if household_id is None:
        raise errors.SiteNotFound(site_id=site_id)
    household_lock(household_id)
    return Site.objects.select_for_update().select_related("household").get(pk=site_id)


def consent_lock(consent_id: int) -> Consent:
    site_id = Consent.objects.filter(pk=consent_id).values_list("site_id", flat=True).first()
    if site_id is None:
        raise errors.ConsentNotFound(consent_id=consent_id)
    site_lock(site_id)
    return Consent.objects.select_for_update().get(pk=consent_id)


def community_lock(community_id: int) -> Community:
    community = (
        Community.objects.select_for_update().select_related("organisation").filter(pk=community_id)
    ).first()
    if community is None:
        raise errors.CommunityNotFound(community_id=community_id)
    return community


def members_lock(member_ids: Iterable[int]) -> list[CommunityMember]:
    return list(
        CommunityMember.objects.select_for_update().filter(pk__in=list(member_ids)).order_by("pk")
    )
