"""Subject keys: how ledger events name what they are about ("device:7", "bundle:12")."""

from collections.abc import Iterable
from typing import Any

from django.db import models

Subject = models.Model | tuple[str, Any] | str


def subject_key(subject: Subject) -> str:
    if isinstance(subject, str):
        return subject
    if isinstance(subject, tuple):
        kind, ident = subject
        return f"{kind}:{ident}"
    kind = getattr(subject, "ledger_subject_type", None) or subject._meta.model_name
    return f"{kind}:{subject.pk}"


def subject_keys(subject: Subject | Iterable[Subject] | None) -> list[str]:
    if subject is None:
        return []
    if isinstance(subject, models.Model | str | tuple):
        return [subject_key(subject)]
    return list(dict.fromkeys(subject_key(item) for item in subject))
