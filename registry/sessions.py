"""Django's database sessions, refusing a cookie no session could have.

Django issues 32 characters of a-z and 0-9, and checks only a cookie's length; a client
can send a NUL in it (`Cookie: sessionid="abcdefgh\\000ijk"`, which the cookie parser
unquotes), and PostgreSQL's driver refuses that string outright: a 500 on every page and
API call. Such a key is no session, the same as an unknown one.
"""

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

_KEY_CHARS = frozenset(VALID_KEY_CHARS)
_KEY_MAX_LENGTH = 40  # the session table's column


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        return bool(
            super()._validate_session_key(key)
            and len(key) <= _KEY_MAX_LENGTH
            and _KEY_CHARS.issuperset(key)
        )
