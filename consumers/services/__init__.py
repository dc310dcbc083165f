"""Every write of the consumers app, one module per use case, re-exported here."""

from consumers.services.communities import (
    community_create,
    community_device_add,
    community_key_set,
    community_member_join,
    community_member_leave,
)
from consumers.services.consents import consent_grant, consent_revoke
from consumers.services.distribution import (
    community_certificates_distribute,
    community_certificates_distribute_due,
)
from consumers.services.households import (
    household_of,
    household_register,
    site_confirm,
    site_meter_link,
    site_readings_submit,
    site_register,
    site_reject,
    user_may_confirm_site,
)

__all__ = [
    "community_certificates_distribute",
    "community_certificates_distribute_due",
    "community_create",
    "community_device_add",
    "community_key_set",
    "community_member_join",
    "community_member_leave",
    "consent_grant",
    "consent_revoke",
    "household_of",
    "household_register",
    "site_confirm",
    "site_meter_link",
    "site_readings_submit",
    "site_register",
    "site_reject",
    "user_may_confirm_site",
]
