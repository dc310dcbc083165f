"""Who the signed-in person is in the registry: their roles, from one query per request."""

from dataclasses import dataclass, field

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest

from accounts.models import Membership, Organisation
from accounts.selectors import membership_list

_WRITERS = (Membership.Role.OPERATOR, Membership.Role.ADMIN)


@dataclass
class Roles:
    """The approved organisations a person acts for, by role."""

    producer: list[Organisation] = field(default_factory=list)
    trader: list[Organisation] = field(default_factory=list)
    auditor: list[Organisation] = field(default_factory=list)
    issuing_body: list[Organisation] = field(default_factory=list)
    writable: set[int] = field(default_factory=set)
    pending: list[Organisation] = field(default_factory=list)
    # The household (consumers app) the person belongs to, if any: its organisation.
    household: Organisation | None = None

    @property
    def any(self) -> bool:
        return bool(
            self.producer or self.trader or self.auditor or self.issuing_body or self.household
        )

    def can_write(self, organisation_id: int) -> bool:
        return organisation_id in self.writable


def _has_household(organisation: Organisation) -> bool:
    try:
        return organisation.household is not None
    except ObjectDoesNotExist:
        return False


def request_roles(request: HttpRequest) -> Roles:
    """The roles of request.user, computed once per request."""
    cached = getattr(request, "_web_roles", None)
    if cached is not None:
        return cached
    roles = Roles()
    # The household rides along on the same query (a LEFT JOIN on its one-to-one row).
    for membership in membership_list(user=request.user).select_related("organisation__household"):
        organisation = membership.organisation
        if organisation.status != Organisation.Status.APPROVED:
            roles.pending.append(organisation)
            continue
        if roles.household is None and _has_household(organisation):
            roles.household = organisation
        if membership.role in _WRITERS:
            roles.writable.add(organisation.pk)
        if organisation.is_producer:
            roles.producer.append(organisation)
        if organisation.is_trader:
            roles.trader.append(organisation)
        if organisation.is_auditor:
            roles.auditor.append(organisation)
        if organisation.is_issuing_body and membership.role in _WRITERS:
            roles.issuing_body.append(organisation)
    request._web_roles = roles
    return roles
