"""The refusals of the consumers app: each with a code and an HTTP status."""

from registry.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class HouseholdExists(Conflict):
    code = "household_exists"
    default_detail = "This login already has a household."


class HouseholdNotAllowed(PermissionDenied):
    code = "household_not_allowed"
    default_detail = "The issuing body and auditors cannot take part as a household."


class NotOrganisationAdmin(PermissionDenied):
    code = "not_organisation_admin"
    default_detail = "Only an admin of the approved organisation may do this."


class HouseholdNotFound(NotFound):
    code = "household_not_found"
    default_detail = "No such household, or not yours."


class SiteNotFound(NotFound):
    code = "site_not_found"
    default_detail = "No such site, or not visible to you."


class SiteExists(Conflict):
    code = "site_exists"
    default_detail = "A site with this metering-point id is already registered."


class SiteStatusConflict(Conflict):
    code = "site_status_conflict"
    default_detail = "The site is not in a state that allows this."


class NotSiteHousehold(PermissionDenied):
    code = "not_site_household"
    default_detail = "Only the site's household may do this."


class NotSiteConfirmer(PermissionDenied):
    code = "not_site_confirmer"
    default_detail = "Only the issuing body or an admin of the household's community confirms."


class MeterNotLinkable(InvalidInput):
    code = "meter_not_linkable"
    default_detail = "This meter cannot serve the site."


class MeterOfAnotherSite(InvalidInput):
    code = "meter_of_another_site"
    default_detail = "A reading names a meter that does not belong to this site."


class ConsentInvalid(InvalidInput):
    code = "consent_invalid"
    default_detail = "The consent is not valid."


class ConsentOverlaps(Conflict):
    code = "consent_overlaps"
    default_detail = "A grant for this site, organisation and purpose already covers that period."


class ConsentNotFound(NotFound):
    code = "consent_not_found"
    default_detail = "No such consent, or not yours."


class ConsentRevoked(Conflict):
    code = "consent_revoked"
    default_detail = "The consent is already revoked."


class ConsentRequired(PermissionDenied):
    code = "consent_required"
    default_detail = "No consent in force from the household covers this read."


class CommunityNotFound(NotFound):
    code = "community_not_found"
    default_detail = "No such community, or not visible to you."


class CommunityMemberNotFound(NotFound):
    code = "community_member_not_found"
    default_detail = "No such community membership."


class NotCommunityAdmin(PermissionDenied):
    code = "not_community_admin"
    default_detail = "Only an admin of the community's organisation may do this."


class MembershipInvalid(InvalidInput):
    code = "community_membership_invalid"
    default_detail = "The membership is not valid."


class MembershipConflict(Conflict):
    code = "community_membership_conflict"
    default_detail = "The organisation is already a member over that period."


class AllocationKeyInvalid(InvalidInput):
    code = "allocation_key_invalid"
    default_detail = "Static shares must be positive and add up to exactly 1."


class DeviceNotShareable(InvalidInput):
    code = "device_not_shareable"
    default_detail = "The device cannot be shared by this community."


class PeriodInvalid(InvalidInput):
    code = "period_invalid"
    default_detail = "Give start < end, aligned to the hour, at most 366 days apart."


class NotCommunityOperator(PermissionDenied):
    code = "not_community_operator"
    default_detail = "Only an operator or admin of the community's organisation may do this."


class DistributionNotPossible(Conflict):
    code = "distribution_not_possible"
    default_detail = "The community's certificates cannot be distributed over this period."


class MeteringPointInvalid(InvalidInput):
    code = "metering_point_invalid"
    default_detail = "Not a metering-point id: 18 digits ending in their GS1 check digit."


class GridAreaUnknown(InvalidInput):
    code = "grid_area_unknown"
    default_detail = "No such grid area."


class MembershipUnmet(MembershipInvalid):
    """A membership the registry's data refuses: a meter, site or account that is not the
    member's (or not in the community's grid area), or a leaving time not after joining."""

    code = "community_membership_unmet"
    default_detail = "The meter, site or account does not fit this membership."


class AllocationKeyUnmet(AllocationKeyInvalid):
    """A static key whose shares do not name exactly the current members or do not add up
    to 1 (a sum over the community's current members: data, not shape)."""

    code = "allocation_key_unmet"
    default_detail = "The shares must name every current member and add up to exactly 1."
