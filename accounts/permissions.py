"""Who may do what. Services call these; API views use them to scope querysets.

Roles come from organisations (issuing body, auditor, producer, trader) and from
memberships (admin > operator > viewer). Only approved organisations act.
"""

from accounts.models import Account, Membership, Organisation, User

_RANK = {Membership.Role.VIEWER: 0, Membership.Role.OPERATOR: 1, Membership.Role.ADMIN: 2}


def _approved_memberships(user: User):
    if not user or not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(
        user=user, organisation__status=Organisation.Status.APPROVED
    ).select_related("organisation")


def user_is_issuing_body(user: User) -> bool:
    """A member (operator or above) of an approved issuing body."""
    return (
        _approved_memberships(user)
        .filter(
            organisation__is_issuing_body=True,
            role__in=[Membership.Role.OPERATOR, Membership.Role.ADMIN],
        )
        .exists()
    )


def user_is_auditor(user: User) -> bool:
    """A member of an approved auditor organisation (reads everything, changes nothing)."""
    return _approved_memberships(user).filter(organisation__is_auditor=True).exists()


def refuse_auditor(user: User) -> None:
    """Raise 403 auditor_read_only before any other check: an auditor changes nothing, even
    where a non-auditor would only learn that there is nothing of theirs to change (404)."""
    from accounts.errors import AuditorReadOnly

    if user_is_auditor(user):
        raise AuditorReadOnly()


def user_reads_everything(user: User) -> bool:
    return user_is_issuing_body(user) or user_is_auditor(user)


def user_role_in(user: User, organisation: Organisation) -> str | None:
    """The user's membership role in the organisation, whatever its status."""
    if not user or not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, organisation=organisation)
        .values_list("role", flat=True)
        .first()
    )


def user_can_act_for(
    user: User, organisation: Organisation, *, role: str = Membership.Role.OPERATOR
) -> bool:
    """The user holds at least `role` in the organisation, and it is approved."""
    held = user_role_in(user, organisation)
    return (
        held is not None
        and organisation.status == Organisation.Status.APPROVED
        and _RANK[held] >= _RANK[role]
    )


def user_can_act_on_account(user: User, account: Account) -> bool:
    return user_can_act_for(user, account.organisation)


def user_organisation_ids(user: User) -> list[int]:
    """Organisations the user belongs to, approved or not (for read scoping)."""
    if not user or not user.is_authenticated:
        return []
    return list(Membership.objects.filter(user=user).values_list("organisation_id", flat=True))
