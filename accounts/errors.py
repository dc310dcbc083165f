from registry.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class OrganisationNotFound(NotFound):
    code = "organisation_not_found"
    default_detail = "No such organisation, or it is not visible to you."


class AccountNotFound(NotFound):
    code = "account_not_found"
    default_detail = "No such account, or it is not visible to you."


class NotIssuingBody(PermissionDenied):
    code = "not_issuing_body"
    default_detail = "Only a member of an approved issuing body may do this."


class AuditorReadOnly(PermissionDenied):
    code = "auditor_read_only"
    default_detail = "Auditors read everything and change nothing."


class NotOrganisationMember(PermissionDenied):
    code = "not_organisation_member"
    default_detail = "You do not act for this organisation (or your role is too low)."


class OrganisationStatusConflict(Conflict):
    code = "organisation_status_conflict"
    default_detail = "The organisation is not in a state that allows this."


class OrganisationAlreadyRegistered(Conflict):
    code = "organisation_already_registered"
    default_detail = "An organisation with this country and registration id already exists."


class UsernameTaken(Conflict):
    """Another login has this username (compared without case): the registry's data."""

    code = "username_taken"
    default_detail = "This username is taken."


class AccountClosed(Conflict):
    code = "account_closed"
    default_detail = "The account is closed."


class AccountNotEmpty(Conflict):
    code = "account_not_empty"
    default_detail = "The account still holds active certificates."


class MembershipExists(Conflict):
    code = "membership_exists"
    default_detail = "The user is already a member of this organisation."


class PasswordTooWeak(InvalidInput):
    """Refused by the password validators (AUTH_PASSWORD_VALIDATORS): too like the username,
    a common password, all digits. `extra.fields.password` lists their messages."""

    code = "password_too_weak"
    default_detail = "The password is too weak."


class InvalidCredentials(InvalidInput):
    code = "invalid_credentials"
    default_detail = "Unknown username or wrong password."


class TokenNotFound(NotFound):
    code = "token_not_found"
    default_detail = "No such token."


class UserUnknown(InvalidInput):
    code = "user_unknown"
    default_detail = "No such user."
