"""Who hears about which ledger event: one mapping from event kind to notices.

A rule takes one integrated event (decoded) and returns `Notice`s: an organisation, a
topic, whether its people must act, and the facts the text is rendered from. Rules for
the kinds of the apps below (accounts, assets, certificates) live here, because this app
may read their selectors and they must not know about notifications. An app above this
one (web) may add rules from its `AppConfig.ready()` with `RULES.register(kind)`; so may
tests. Webhook endpoints subscribe to the kinds that have rules, and receive an event when
their organisation is among the rule's organisations.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Account, Organisation
from notifications.models import Topic


@dataclass(frozen=True)
class Notice:
    """What one organisation is told about one event."""

    organisation_id: int
    topic: str
    subject: str
    params: dict[str, Any] = field(default_factory=dict)
    action_required: bool = False


Rule = Callable[[dict[str, Any]], Iterable[Notice]]


class RuleBook(dict):
    """Event kind -> the rules that turn an event of that kind into notices."""

    def register(self, kind: str) -> Callable[[Rule], Rule]:
        def add(rule: Rule) -> Rule:
            rules = self.setdefault(kind, [])
            if rule not in rules:
                rules.append(rule)
            return rule

        return add

    def notices(self, event: dict[str, Any]) -> list[Notice]:
        return [notice for rule in self.get(event["type"], ()) for notice in rule(event)]


RULES = RuleBook()


def _account_organisations(*account_ids: int) -> dict[int, int]:
    return dict(Account.objects.filter(pk__in=account_ids).values_list("id", "organisation_id"))


def _account_numbers(*account_ids: int) -> dict[int, str]:
    return dict(Account.objects.filter(pk__in=account_ids).values_list("id", "number"))


def _transfer_notices(data: dict[str, Any]) -> list[Notice]:
    if data.get("status") != "pending":
        return []
    to_id, from_id = data["to_account_id"], data["from_account_id"]
    organisation_id = _account_organisations(to_id).get(to_id)
    if organisation_id is None:
        return []
    numbers = _account_numbers(to_id, from_id)
    return [
        Notice(
            organisation_id=organisation_id,
            topic=Topic.TRANSFER_INCOMING,
            subject=f"transfer:{data['transfer_id']}",
            params={
                "transfer_id": data["transfer_id"],
                "volume_wh": data["volume_wh"],
                "from_account": numbers.get(from_id, str(from_id)),
                "to_account": numbers.get(to_id, str(to_id)),
            },
            action_required=True,
        )
    ]


@RULES.register("certificate.transferred")
def transfer_pending(event: dict[str, Any]) -> list[Notice]:
    """A transfer waiting for the receiver's acceptance: the receiver must act."""
    return _transfer_notices(event["data"])


@RULES.register("certificate.batch_transferred")
def batch_transfer_pending(event: dict[str, Any]) -> list[Notice]:
    """Each pending transfer of a batch, as for one transfer."""
    return [n for data in event["data"]["transfers"] for n in _transfer_notices(data)]


def _transfer_answered(event: dict[str, Any], topic: str) -> list[Notice]:
    data = event["data"]
    from_id, to_id = data["from_account_id"], data["to_account_id"]
    organisation_id = _account_organisations(from_id).get(from_id)
    if organisation_id is None:
        return []
    numbers = _account_numbers(to_id, from_id)
    params = {
        "transfer_id": data["transfer_id"],
        "volume_wh": data["volume_wh"],
        "from_account": numbers.get(from_id, str(from_id)),
        "to_account": numbers.get(to_id, str(to_id)),
    }
    subject = f"transfer:{data['transfer_id']}"
    return [Notice(organisation_id, topic, subject, params)]


@RULES.register("certificate.transfer_accepted")
def transfer_accepted(event: dict[str, Any]) -> list[Notice]:
    """The receiver accepted: the sender is told."""
    return _transfer_answered(event, Topic.TRANSFER_ACCEPTED)


@RULES.register("certificate.transfer_rejected")
def transfer_rejected(event: dict[str, Any]) -> list[Notice]:
    """The receiver refused: the sender is told (the units are theirs again)."""
    return _transfer_answered(event, Topic.TRANSFER_REJECTED)


@RULES.register("reading_batch.held")
def reading_batch_held(event: dict[str, Any]) -> list[Notice]:
    """A held batch: the issuing bodies must review it, the producer is told why."""
    data = event["data"]
    params = {
        "batch_id": data["batch_id"],
        "size": data["size"],
        "reasons": sorted({item["code"] for item in data.get("review", [])}),
    }
    subject = f"reading_batch:{data['batch_id']}"
    issuing_bodies = Organisation.objects.filter(
        is_issuing_body=True, status=Organisation.Status.APPROVED
    ).values_list("id", flat=True)
    notices = [
        Notice(body_id, Topic.BATCH_HELD, subject, params, action_required=True)
        for body_id in issuing_bodies
    ]
    if data["organisation_id"] not in issuing_bodies:
        notices.append(Notice(data["organisation_id"], Topic.BATCH_HELD, subject, params))
    return notices


@RULES.register("organisation.approved")
def organisation_approved(event: dict[str, Any]) -> list[Notice]:
    """The organisation may act now: its members are told."""
    organisation_id = event["data"]["organisation_id"]
    return [
        Notice(
            organisation_id,
            Topic.ORGANISATION_APPROVED,
            f"organisation:{organisation_id}",
            {"organisation_id": organisation_id},
        )
    ]
