"""The words of a notification, rendered when read (so each reader gets their language)."""

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.models import Topic


def _kwh(wh: int) -> str:
    return f"{wh / 1000:,.3f}"


# The topics' titles, marked for translation (the model's labels are not).
TITLES = {
    Topic.TRANSFER_INCOMING: gettext_lazy("Incoming transfer to accept"),
    Topic.TRANSFER_ACCEPTED: gettext_lazy("Transfer accepted"),
    Topic.TRANSFER_REJECTED: gettext_lazy("Transfer rejected"),
    Topic.BATCH_HELD: gettext_lazy("Reading batch held for review"),
    Topic.CERTIFICATES_EXPIRING: gettext_lazy("Certificates about to expire"),
    Topic.ORGANISATION_APPROVED: gettext_lazy("Organisation approved"),
}


def notification_title(topic: str) -> str:
    """The topic's title in the active language (the topic itself when unknown)."""
    if topic in TITLES:
        return str(TITLES[topic])
    return str(Topic(topic).label) if topic in Topic.values else topic


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
        text = _("Reading batch {batch_id} ({size} readings) is held for review: {reasons}.")
    elif topic == Topic.CERTIFICATES_EXPIRING:
        text = _(
            "{bundles} bundles ({volume_kwh} kWh) in account {account} expire by {until}; "
            "the first on {first_expiry}."
        )
    elif topic == Topic.ORGANISATION_APPROVED:
        text = _("Your organisation is approved and may now act in the registry.")
    else:
        return ""
    return text.format(**p)
