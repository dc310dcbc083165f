"""The date-times the registry takes from outside: one pattern for the schema and the code."""

import re

# A real calendar date in years 1000-8999: 29 and 30 in every month but February, 31 in
# the seven long months, 29 February in leap years (every fourth, but of the centuries
# only those divisible by 400).
_YEAR = r"[1-8][0-9]{3}"
_LEAP_YEAR = (
    r"(?:[1-8][0-9](?:0[48]|[2468][048]|[13579][26])"
    r"|(?:1[26]|2[048]|3[26]|4[048]|5[26]|6[048]|7[26]|8[048])00)"
)
_DATE = (
    rf"(?:{_YEAR}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    rf"|{_LEAP_YEAR}-02-29)"
)
# RFC 3339 with ASCII digits (`\d` takes any Unicode digit in Python), an upper-case T
# and Z, up to microseconds, and a UTC offset up to ±15:59 (what PostgreSQL stores).
# Within years 1000-8999 every such time has a UTC instant that Python and PostgreSQL
# can hold, so the pattern is the whole range check: the schema states it for every
# date-time the API takes, and the API takes exactly it.
DATE_TIME = (
    rf"^{_DATE}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-](?:0[0-9]|1[0-5]):[0-5][0-9])$"
)
# Use its fullmatch: Python's `$` also matches before a final newline, ECMA-262's does not.
DATE_TIME_RE = re.compile(DATE_TIME)
DATE_TIME_HINT = (
    "Give an RFC 3339 date-time with a UTC offset, such as 2026-01-01T00:00:00Z "
    "(years 1000-8999, offsets up to ±15:59)."
)
