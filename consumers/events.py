"""Ledger event kinds of the consumers app (catalogue: ledger/EVENTS.md, "consumers").

Events name ids, never a person's name or address: the ledger is public.
"""

HOUSEHOLD_REGISTERED = "household.registered"
SITE_REGISTERED = "site.registered"
SITE_CONFIRMED = "site.confirmed"
SITE_REJECTED = "site.rejected"
SITE_METER_LINKED = "site.meter_linked"
CONSENT_GRANTED = "consent.granted"
CONSENT_REVOKED = "consent.revoked"
COMMUNITY_CREATED = "community.created"
COMMUNITY_MEMBER_JOINED = "community.member_joined"
COMMUNITY_MEMBER_LEFT = "community.member_left"
COMMUNITY_KEY_SET = "community.key_set"
COMMUNITY_DEVICE_ADDED = "community.device_added"
COMMUNITY_CERTIFICATES_DISTRIBUTED = "community.certificates_distributed"

KINDS = (
    HOUSEHOLD_REGISTERED,
    SITE_REGISTERED,
    SITE_CONFIRMED,
    SITE_REJECTED,
    SITE_METER_LINKED,
    CONSENT_GRANTED,
    CONSENT_REVOKED,
    COMMUNITY_CREATED,
    COMMUNITY_MEMBER_JOINED,
    COMMUNITY_MEMBER_LEFT,
    COMMUNITY_KEY_SET,
    COMMUNITY_DEVICE_ADDED,
    COMMUNITY_CERTIFICATES_DISTRIBUTED,
)


def consent_data(consent) -> dict:
    return {
        "consent_id": consent.pk,
        "household_id": consent.household_id,
        "site_id": consent.site_id,
        "grantee_id": consent.grantee_id,
        "purpose": consent.purpose,
        "resolution": consent.resolution,
        "site_meter_ids": sorted(m.pk for m in consent.meters.all()),
        "valid_from": consent.valid_from,
        "valid_to": consent.valid_to,
    }
