from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.services import api_token_authenticate


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer gp_…` with a per-user API token."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in {"bearer", "token"} or not token:
            return None
        user = api_token_authenticate(token.strip())
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API token.")
        return user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A per-user API token from POST /api/v1/auth/tokens/ (shown once).",
        }
