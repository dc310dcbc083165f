"""Reads about participants, scoped to what the user may see."""

from django.db.models import Q, QuerySet

from accounts.models import Account, ApiToken, Membership, Organisation, User
from accounts.permissions import user_organisation_ids, user_reads_everything
from registry.joined_rows import JoinedSelect, part


def organisation_list(*, user: User | None) -> QuerySet[Organisation]:
    """Approved organisations are public; members also see their own; staff roles see all."""
    qs = Organisation.objects.all()
    if user is not None and user_reads_everything(user):
        return qs
    own = user_organisation_ids(user) if user is not None else []
    return qs.filter(Q(status=Organisation.Status.APPROVED) | Q(pk__in=own))


def account_list(*, user: User | None) -> QuerySet[Account]:
    """A user's own organisations' accounts; issuing body and auditors see every account."""
    qs = Account.objects.select_related("organisation")
    if user is None or not user.is_authenticated:
        return qs.none()
    if user_reads_everything(user):
        return qs
    return qs.filter(organisation_id__in=user_organisation_ids(user))


def membership_list(*, user: User | None) -> QuerySet[Membership]:
    """The user's memberships with their organisations, approved or not."""
    if user is None or not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("organisation").order_by("pk")


def account_numbers(*, account_ids: set[int]) -> dict[int, str]:
    """Public account numbers by id (numbers are public; ids are internal)."""
    return dict(Account.objects.filter(pk__in=account_ids).values_list("pk", "number"))


# The token and its user in one hand-written SELECT: the ORM's select_related query cost
# about 1 ms a request to compile and decode, the query itself a tenth of that
# (benchmarks/README.md, "One-bundle read"). Every User column, so request.user is whole.
_TOKEN_WITH_USER = JoinedSelect(
    part(ApiToken, "t", ("id", "user_id", "key_hash", "last_used_at", "expires_at")),
    part(User, "u"),
)


def api_token_live_by_prefix(prefix: str) -> ApiToken | None:
    """The unrevoked token with this prefix, its `user` loaded (one query)."""
    found = _TOKEN_WITH_USER.one(
        f"FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id "
        "WHERE t.prefix = %s AND t.revoked_at IS NULL",
        [prefix],
        prepared="gp_api_token_live",
    )
    if found is None:
        return None
    token, user = found
    token.user = user
    return token
