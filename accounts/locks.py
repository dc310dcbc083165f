"""Row locks of the accounts app, each taken FOR UPDATE inside the caller's transaction.

Lock order (docs/architecture.md, "Lock order", step 1): the organisation (approval,
membership, device registration for it) or the account being closed, before any row of a
higher app. A token is the user's own row and is locked alone.
"""

from __future__ import annotations

from accounts import errors
from accounts.models import Account, ApiToken, Organisation, User


def organisation_lock(organisation_id: int) -> Organisation:
    """The organisation FOR UPDATE, or `OrganisationNotFound`."""
    try:
        return Organisation.objects.select_for_update().get(pk=organisation_id)
    except Organisation.DoesNotExist:
        raise errors.OrganisationNotFound(organisation_id=organisation_id) from None


def account_lock_for_close(account_id: int) -> Account:
    """The account (with its organisation) FOR UPDATE, or `AccountNotFound`; transfers into
    it hold FOR KEY SHARE and so wait for the close and then see it closed."""
    try:
        return Account.objects.select_for_update().select_related("organisation").get(pk=account_id)
    except Account.DoesNotExist:
        raise errors.AccountNotFound(account_id=account_id) from None


def api_token_lock(*, token_id: int, user: User) -> ApiToken | None:
    """One of the user's own tokens FOR UPDATE, or None."""
    return ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
