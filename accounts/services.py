"""Every write about participants: one function per use case, one transaction, one event."""

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import errors, locks
from accounts.models import Account, ApiToken, Membership, Organisation, User
from accounts.permissions import (
    user_can_act_for,
    user_is_auditor,
    user_is_issuing_body,
    user_role_in,
)
from accounts.selectors import api_token_live_by_prefix
from ledger.services import ledger_append
from registry.countries import country_code_valid
from registry.errors import InvalidInput, OrganisationNotApproved
from registry.hooks import Hook

TOKEN_PREFIX = "gp_"  # noqa: S105 - a public marker, not a secret
_TOKEN_ID = re.compile(r"[0-9a-f]{1,16}")  # a token's public prefix: token_hex(6) is 12

# Checks run before an account closes (the certificates app adds "holds nothing").
ACCOUNT_CLOSE_GUARDS = Hook("accounts.account_close_guards")  # Callable[[Account], None]


def _require_issuing_body(actor: User) -> None:
    if not user_is_issuing_body(actor):
        raise errors.NotIssuingBody()


def _require_role(actor: User, organisation: Organisation, role: str) -> None:
    """The actor holds at least `role` in the approved organisation, or a precise error."""
    if user_can_act_for(actor, organisation, role=role):
        return
    if organisation.status != Organisation.Status.APPROVED and user_role_in(actor, organisation):
        raise OrganisationNotApproved(organisation_id=organisation.pk, status=organisation.status)
    raise errors.NotOrganisationMember()


def _organisation_create(**fields) -> Organisation:
    # The unique constraint is the backstop for two registrations racing past the check.
    country, registration_id = fields["country"], fields["registration_id"]
    if Organisation.objects.filter(country=country, registration_id=registration_id).exists():
        raise errors.OrganisationAlreadyRegistered(country=country, registration_id=registration_id)
    try:
        with transaction.atomic():
            return Organisation.objects.create(**fields)
    except IntegrityError:
        raise errors.OrganisationAlreadyRegistered(
            country=country, registration_id=registration_id
        ) from None


@transaction.atomic
def user_register(*, username: str, password: str, email: str = "") -> User:
    """Create a login; it acts for nobody until it registers or joins an organisation."""
    if User.objects.filter(username__iexact=username).exists():
        raise errors.UsernameTaken(fields={"username": ["taken"]})
    user = User(username=username, email=email)
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise errors.PasswordTooWeak(fields={"password": exc.messages}) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise errors.UsernameTaken(fields={"username": ["taken"]}) from None
    ledger_append(kind="user.registered", actor=user, subject=user, data={"user_id": user.pk})
    return user


@transaction.atomic
def organisation_register(
    *,
    actor: User,
    legal_name: str,
    country: str,
    registration_id: str,
    roles: Iterable[str],
) -> Organisation:
    """Register a pending organisation; the actor becomes its administrator."""
    if user_is_auditor(actor):
        raise errors.AuditorReadOnly()
    roles = sorted(set(roles))
    known = {role.value for role in Organisation.Role}
    if not roles or not set(roles) <= known:
        raise InvalidInput(
            "Give at least one role among: " + ", ".join(sorted(known)), fields={"roles": roles}
        )
    if not country_code_valid(country):
        raise InvalidInput("Country must be an ISO 3166-1 alpha-2 code such as 'DE'.")
    organisation = _organisation_create(
        legal_name=legal_name,
        country=country,
        registration_id=registration_id,
        **{f"is_{role}": True for role in roles},
    )
    Membership.objects.create(user=actor, organisation=organisation, role=Membership.Role.ADMIN)
    ledger_append(
        kind="organisation.registered",
        actor=actor,
        subject=[organisation, actor],
        data={
            "organisation_id": organisation.pk,
            "legal_name": legal_name,
            "country": country,
            "registration_id": registration_id,
            "roles": roles,
        },
    )
    return organisation


def _organisation_set_status(
    *,
    actor: User | str,
    organisation_id: int,
    allowed_from: set[str],
    to: str,
    kind: str,
    reason: str,
) -> Organisation:
    organisation = locks.organisation_lock(organisation_id)
    if organisation.status not in allowed_from:
        raise errors.OrganisationStatusConflict(
            f"The organisation is {organisation.status}; it cannot become {to}.",
            status=organisation.status,
        )
    organisation.status = to
    organisation.status_reason = reason
    fields = ["status", "status_reason"]
    if to == Organisation.Status.APPROVED and organisation.approved_at is None:
        organisation.approved_at = timezone.now()
        fields.append("approved_at")
    organisation.save(update_fields=fields)
    ledger_append(
        kind=kind,
        actor=actor,
        subject=organisation,
        data={"organisation_id": organisation.pk, "reason": reason},
    )
    return organisation


@transaction.atomic
def organisation_approve(*, actor: User, organisation_id: int, reason: str = "") -> Organisation:
    """The issuing body approves a pending organisation."""
    _require_issuing_body(actor)
    return _organisation_set_status(
        actor=actor,
        organisation_id=organisation_id,
        allowed_from={Organisation.Status.PENDING},
        to=Organisation.Status.APPROVED,
        kind="organisation.approved",
        reason=reason,
    )


@transaction.atomic
def organisation_suspend(*, actor: User, organisation_id: int, reason: str) -> Organisation:
    """The issuing body suspends an organisation: its members can no longer act."""
    _require_issuing_body(actor)
    if not reason.strip():
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    return _organisation_set_status(
        actor=actor,
        organisation_id=organisation_id,
        allowed_from={Organisation.Status.PENDING, Organisation.Status.APPROVED},
        to=Organisation.Status.SUSPENDED,
        kind="organisation.suspended",
        reason=reason,
    )


@transaction.atomic
def organisation_reinstate(*, actor: User, organisation_id: int, reason: str) -> Organisation:
    """The issuing body lifts a suspension."""
    _require_issuing_body(actor)
    return _organisation_set_status(
        actor=actor,
        organisation_id=organisation_id,
        allowed_from={Organisation.Status.SUSPENDED},
        to=Organisation.Status.APPROVED,
        kind="organisation.reinstated",
        reason=reason,
    )


@transaction.atomic
def issuing_body_bootstrap(
    *, legal_name: str, country: str, registration_id: str, admin: User
) -> Organisation:
    """Create the registry operator's organisation, approved, with `admin` as administrator.

    Only for installation (management command, demo data): there is no issuing
    body yet to approve the first one.
    """
    if not country_code_valid(country):
        raise InvalidInput("Country must be an ISO 3166-1 alpha-2 code such as 'DE'.")
    organisation = _organisation_create(
        legal_name=legal_name,
        country=country,
        registration_id=registration_id,
        is_issuing_body=True,
        status=Organisation.Status.APPROVED,
        approved_at=timezone.now(),
    )
    Membership.objects.create(user=admin, organisation=organisation, role=Membership.Role.ADMIN)
    ledger_append(
        kind="organisation.bootstrapped",
        actor="system:bootstrap",
        subject=[organisation, admin],
        data={
            "organisation_id": organisation.pk,
            "legal_name": legal_name,
            "country": country,
            "registration_id": registration_id,
            "roles": organisation.roles,
            "admin_user_id": admin.pk,
        },
    )
    return organisation


@transaction.atomic
def membership_add(
    *, actor: User, organisation_id: int, user_id: int, role: str = Membership.Role.OPERATOR
) -> Membership:
    """An organisation administrator (or the issuing body) adds a user with a role."""
    organisation = locks.organisation_lock(organisation_id)
    if not user_is_issuing_body(actor):
        _require_role(actor, organisation, Membership.Role.ADMIN)
    if role not in Membership.Role.values:
        raise InvalidInput("Unknown membership role.", fields={"role": [role]})
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise errors.UserUnknown(fields={"user": [user_id]})
    try:
        with transaction.atomic():
            membership = Membership.objects.create(user=user, organisation=organisation, role=role)
    except IntegrityError:
        raise errors.MembershipExists(user_id=user_id) from None
    ledger_append(
        kind="membership.added",
        actor=actor,
        subject=[organisation, user],
        data={"organisation_id": organisation.pk, "user_id": user.pk, "role": role},
    )
    return membership


_ACCOUNT_LETTER = {
    Account.Kind.TRADING: "T",
    Account.Kind.ISSUANCE: "I",
    Account.Kind.RETIREMENT: "R",
}


@transaction.atomic
def account_open(*, actor: User, organisation_id: int, kind: str, name: str) -> Account:
    """Open a certificate-holding account for an approved organisation."""
    organisation = locks.organisation_lock(organisation_id)
    _require_role(actor, organisation, Membership.Role.ADMIN)
    if organisation.is_auditor and not (organisation.is_producer or organisation.is_trader):
        # An auditor reads everything; holding certificates would make it a party.
        raise errors.AuditorReadOnly("An auditor organisation holds no certificate accounts.")
    if kind not in Account.Kind.values:
        raise InvalidInput("Unknown account kind.", fields={"kind": [kind]})
    serial = Account.objects.filter(organisation=organisation).count() + 1
    account = Account.objects.create(
        organisation=organisation,
        kind=kind,
        name=name,
        number=f"GP-{organisation.pk:05d}-{_ACCOUNT_LETTER[kind]}{serial:03d}",
    )
    ledger_append(
        kind="account.opened",
        actor=actor,
        subject=[account, organisation],
        data={
            "account_id": account.pk,
            "number": account.number,
            "organisation_id": organisation.pk,
            "kind": kind,
        },
    )
    return account


@transaction.atomic
def account_close(*, actor: User, account_id: int) -> Account:
    """Close an account that holds nothing; it can never receive certificates again."""
    account = locks.account_lock_for_close(account_id)
    _require_role(actor, account.organisation, Membership.Role.ADMIN)
    if not account.is_open:
        raise errors.AccountClosed(account_id=account.pk)
    for guard in ACCOUNT_CLOSE_GUARDS:
        guard(account)
    account.status = Account.Status.CLOSED
    account.closed_at = timezone.now()
    account.save(update_fields=["status", "closed_at"])
    ledger_append(
        kind="account.closed", actor=actor, subject=account, data={"account_id": account.pk}
    )
    return account


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *, user: User, name: str, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token; the plaintext is returned once and never stored.

    It expires after `expires_in_days`, or API_TOKEN_DEFAULT_TTL_DAYS when not given
    (0: never).
    """
    days = settings.API_TOKEN_DEFAULT_TTL_DAYS if expires_in_days is None else expires_in_days
    if days < 0:
        raise InvalidInput(fields={"expires_in_days": ["Must be 0 or more."]})
    expires_at = timezone.now() + timedelta(days=days) if days else None
    prefix = secrets.token_hex(6)
    plaintext = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, key_hash=_token_hash(plaintext), expires_at=expires_at
    )
    ledger_append(
        kind="api_token.created",
        actor=user,
        subject=user,
        data={
            "token_id": token.pk,
            "prefix": prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens; revoking twice is a no-op."""
    token = locks.api_token_lock(token_id=token_id, user=user)
    if token is None:
        raise errors.TokenNotFound(token_id=token_id)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        ledger_append(
            kind="api_token.revoked",
            actor=user,
            subject=user,
            data={"token_id": token.pk, "prefix": token.prefix},
        )
    return token


def api_token_authenticate(plaintext: str) -> User | None:
    """The user behind a live (not revoked, not expired) token, or None.

    Not a write, except `last_used_at`, which moves at most once a minute so that a busy
    client does not turn every request into an UPDATE.
    """
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    prefix = plaintext[len(TOKEN_PREFIX) :].split("_", 1)[0]
    if not _TOKEN_ID.fullmatch(prefix):  # no query for what no token has (NUL, any length)
        return None
    token = api_token_live_by_prefix(prefix)
    if token is None or not secrets.compare_digest(token.key_hash, _token_hash(plaintext)):
        return None
    if not token.user.is_active:
        return None
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
