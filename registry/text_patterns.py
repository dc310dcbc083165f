"""Pieces of regular expressions that mean the same in Python and in the schema.

The schema's patterns are ECMA-262 regular expressions, checked by clients and by the API
fuzzer; the code checks the same texts with Python's `re`. Where the two dialects differ
(`\\s`, `\\d`, `$` before a final newline), a pattern spells the set out.
"""

# Every character str.strip() removes (Python's str.isspace), spelled out: `\s` means
# that set in Python's re, but a narrower one in Rust's regex (no \x1c-\x1f) and a wider
# one in ECMA-262 (\ufeff), which schema validators and the fuzzer's generator use.
SPACE = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0"
    "\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
