"""Consents: a household grants an organisation access to a site's data, and revokes it.

Locking: household, then site, then consent (consumers.locks); two grants for one site
serialise on the site's row, so the overlap check cannot be raced past.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation, User
from accounts.permissions import refuse_auditor, user_can_act_for
from consumers import errors, events
from consumers.locks import consent_lock, site_lock
from consumers.models import Consent, SiteMeter
from ledger.services import ledger_append

MAX_GRANT = dt.timedelta(days=3 * 366)


@transaction.atomic
def consent_grant(
    *,
    actor: User,
    site_id: int,
    grantee_id: int,
    purpose: str,
    site_meter_ids: Sequence[int],
    resolution: str,
    valid_to: dt.datetime,
    valid_from: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Consent:
    """Let `grantee` read the named meters of the site at `resolution` over the period."""
    refuse_auditor(actor)
    now = now or timezone.now()
    site = site_lock(site_id)
    household = site.household
    if not user_can_act_for(actor, household.organisation):
        raise errors.NotSiteHousehold()
    problems: dict[str, list[str]] = {}
    if purpose not in Consent.Purpose.values:
        problems["purpose"] = [f"One of {', '.join(Consent.Purpose.values)}."]
    if resolution not in Consent.Resolution.values:
        problems["resolution"] = [f"One of {', '.join(Consent.Resolution.values)}."]
    valid_from = valid_from or now
    for name, value in (("valid_from", valid_from), ("valid_to", valid_to)):
        if value.tzinfo is None:
            problems[name] = ["A time with a UTC offset is required."]
    if not problems:
        if valid_to <= valid_from:
            problems["valid_to"] = ["Must be after valid_from."]
        elif valid_to <= now:
            problems["valid_to"] = ["The grant would already be expired."]
        elif valid_to - valid_from > MAX_GRANT:
            problems["valid_to"] = ["A grant lasts at most three years; renew it later."]
    ids = sorted(set(site_meter_ids or []))
    meters = list(SiteMeter.objects.filter(site=site, pk__in=ids))
    if not ids or len(meters) != len(ids):
        problems["site_meter_ids"] = ["Name one or more meters of this site."]
    grantee = Organisation.objects.filter(pk=grantee_id).first()
    if grantee is None or grantee.status != Organisation.Status.APPROVED:
        problems["grantee_id"] = ["An approved organisation."]
    elif grantee.pk == household.organisation_id:
        problems["grantee_id"] = ["The household reads its own data without a grant."]
    if problems:
        raise errors.ConsentInvalid(fields=problems)
    clash = (
        Consent.objects.filter(
            site=site,
            grantee=grantee,
            purpose=purpose,
            revoked_at__isnull=True,
            valid_from__lt=valid_to,
            valid_to__gt=valid_from,
        )
        .values_list("pk", flat=True)
        .first()
    )
    if clash is not None:
        raise errors.ConsentOverlaps(consent_id=clash)
    consent = Consent.objects.create(
        household=household,
        site=site,
        grantee=grantee,
        purpose=purpose,
        resolution=resolution,
        valid_from=valid_from,
        valid_to=valid_to,
        granted_by=actor,
        created_at=now,
    )
    consent.meters.set(meters)
    ledger_append(
        kind=events.CONSENT_GRANTED,
        actor=actor,
        subject=[consent, site, household, grantee],
        data=events.consent_data(consent),
    )
    return consent


@transaction.atomic
def consent_revoke(*, actor: User, consent_id: int, now: dt.datetime | None = None) -> Consent:
    """End a grant at once: reads from this instant on are refused."""
    refuse_auditor(actor)
    consent = consent_lock(consent_id)
    household = consent.household
    if not user_can_act_for(actor, household.organisation):
        raise errors.ConsentNotFound(consent_id=consent_id)
    if consent.revoked_at is not None:
        raise errors.ConsentRevoked(consent_id=consent_id)
    consent.revoked_at = now or timezone.now()
    consent.revoked_by = actor
    consent.save(update_fields=["revoked_at", "revoked_by"])
    ledger_append(
        kind=events.CONSENT_REVOKED,
        actor=actor,
        subject=[consent, consent.site, household],
        data={
            "consent_id": consent.pk,
            "site_id": consent.site_id,
            "grantee_id": consent.grantee_id,
            "revoked_at": consent.revoked_at,
        },
    )
    return consent
