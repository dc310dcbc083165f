"""The words of a notification, rendered when read (so each reader gets their language).

A notification stores its topic and the facts as plain values (`params`: Wh as integers,
dates as ISO strings); the title and the sentence are made here, in the active language,
with the numbers and dates in that language's format: 1234500 Wh reads "1,234.5 kWh" in
English and "1 234,5 кВт·ч" in Russian (Django's formats for each locale).
"""

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from notifications.models import Topic


def _grouped(value: int | Decimal) -> str:
    return formats.number_format(value, use_l10n=True, force_grouping=True)


def _kwh(wh: int) -> str:
    """Wh as kWh, exact (at most three decimals, none that are zero), in the locale's format."""
    return _grouped(Decimal(int(wh)) / 1000)


def _date(iso: str) -> str:
    """An ISO date (as stored) in the locale's long date format."""
    return formats.date_format(date.fromisoformat(iso), "DATE_FORMAT", use_l10n=True)


# The topics' titles, marked for translation (the model's labels are not).
TITLES = {
    Topic.TRANSFER_INCOMING: gettext_lazy("Incoming transfer to accept"),
    Topic.TRANSFER_ACCEPTED: gettext_lazy("Transfer accepted"),
    Topic.TRANSFER_REJECTED: gettext_lazy("Transfer rejected"),
    Topic.BATCH_HELD: gettext_lazy("Reading batch held for review"),
    Topic.CERTIFICATES_EXPIRING: gettext_lazy("Certificates about to expire"),
    Topic.ORGANISATION_APPROVED: gettext_lazy("Organisation approved"),
    Topic.TRADE_FILLED: gettext_lazy("Trade filled"),
    Topic.CONSENT_GRANTED: gettext_lazy("Consent granted"),
    Topic.CONSENT_REVOKED: gettext_lazy("Consent revoked"),
}

# A consent's purpose and resolution as words (the consumers app's labels stay English).
CONSENT_PURPOSES = {
    "supply": pgettext_lazy("consent purpose", "supply and billing"),
    "flexibility": pgettext_lazy("consent purpose", "aggregation and flexibility"),
    "community": pgettext_lazy("consent purpose", "energy community allocation"),
    "audit": pgettext_lazy("consent purpose", "audit"),
    "advice": pgettext_lazy("consent purpose", "energy advice"),
    "other": pgettext_lazy("consent purpose", "other"),
}
CONSENT_RESOLUTIONS = {
    "hourly": pgettext_lazy("consent resolution", "hourly"),
    "daily": pgettext_lazy("consent resolution", "daily"),
    "monthly": pgettext_lazy("consent resolution", "monthly"),
}


def notification_title(topic: str) -> str:
    """The topic's title in the active language (the topic itself when unknown)."""
    if topic in TITLES:
        return str(TITLES[topic])
    return str(Topic(topic).label) if topic in Topic.values else topic


def _trade_text(p: dict[str, Any]) -> str:
    p["price"] = _grouped(p["price"])
    p["amount"] = _grouped(p["amount_minor"])
    if p.get("side") == "buy":
        return _(
            "Trade {trade_id} in market {market}: you bought {volume_kwh} kWh at {price} per "
            "MWh, {amount} in all (minor units of {currency}); your order {order_id}."
        )
    return _(
        "Trade {trade_id} in market {market}: you sold {volume_kwh} kWh at {price} per "
        "MWh, {amount} in all (minor units of {currency}); your order {order_id}."
    )


def _consent_text(topic: str, p: dict[str, Any]) -> str:
    p["purpose"] = str(CONSENT_PURPOSES.get(p.get("purpose"), p.get("purpose")))
    p["resolution"] = str(CONSENT_RESOLUTIONS.get(p.get("resolution"), p.get("resolution")))
    granted = topic == Topic.CONSENT_GRANTED
    if granted:
        p["valid_to"] = _date(p["valid_to"])
    if p.get("role") == "grantee":
        if granted:
            return _(
                "A household granted your organisation consent {consent_id} to read site "
                "{site_id} ({resolution} data, for {purpose}) until {valid_to}."
            )
        return _(
            "The household revoked consent {consent_id}: your organisation may no longer "
            "read site {site_id}."
        )
    if granted:
        return _(
            "You granted {grantee} consent {consent_id} to read site {site_id} ({resolution} "
            "data, for {purpose}) until {valid_to}."
        )
    return _("You revoked consent {consent_id}: {grantee} may no longer read site {site_id}.")


def notification_body(topic: str, params: dict[str, Any]) -> str:
    """One sentence saying what happened and, when it waits on the reader, what to do."""
    p = dict(params)
    if "volume_wh" in p:
        p["volume_kwh"] = _kwh(p["volume_wh"])
    if topic == Topic.TRANSFER_INCOMING:
        text = _(
            "Transfer {transfer_id} of {volume_kwh} kWh from account {from_account} to your "
            "account {to_account} waits for your acceptance."
        )
    elif topic == Topic.TRANSFER_ACCEPTED:
        text = _("Account {to_account} accepted transfer {transfer_id} of {volume_kwh} kWh.")
    elif topic == Topic.TRANSFER_REJECTED:
        text = _(
            "Account {to_account} rejected transfer {transfer_id} of {volume_kwh} kWh; the "
            "units are back in account {from_account}."
        )
    elif topic == Topic.BATCH_HELD:
        p["reasons"] = ", ".join(p.get("reasons") or []) or "-"
        p["size"] = _grouped(p["size"])
        text = _("Reading batch {batch_id} ({size} readings) is held for review: {reasons}.")
    elif topic == Topic.CERTIFICATES_EXPIRING:
        p["bundles"] = _grouped(p["bundles"])
        p["until"] = _date(p["until"])
        p["first_expiry"] = _date(p["first_expiry"])
        text = _(
            "{bundles} bundles ({volume_kwh} kWh) in account {account} expire by {until}; "
            "the first on {first_expiry}."
        )
    elif topic == Topic.ORGANISATION_APPROVED:
        text = _("Your organisation is approved and may now act in the registry.")
    elif topic == Topic.TRADE_FILLED:
        text = _trade_text(p)
    elif topic in (Topic.CONSENT_GRANTED, Topic.CONSENT_REVOKED):
        text = _consent_text(topic, p)
    else:
        return ""
    text = text.format(**p)
    # A date that ends a sentence may end with its own dot (Russian dates end in "year.").
    return text[:-1] if text.endswith("..") else text
