"""Who hears about which ledger event: one mapping from event kind to notices.

A rule takes one integrated event (decoded) and returns `Notice`s: an organisation, a
topic, whether its people must act, and the facts the text is rendered from. Rules for
the kinds of the apps below (accounts, assets, certificates, market, consumers) live here,
because this app may read their data and they must not know about notifications. An app above this
one (web) may add rules from its `AppConfig.ready()` with `RULES.register(kind)`; so may
tests. Webhook endpoints subscribe to the kinds that have rules, and receive an event when
their organisation is among the rule's organisations.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Account, Organisation
from consumers.models import Consent, Household
from market.models import Market, Order
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


@RULES.register("certificate.cut_transferred")
def cut_transfer_pending(event: dict[str, Any]) -> list[Notice]:
    """Each pending part of a cut (a contract group's shares), as for one transfer."""
    data = event["data"]
    receivers = data["receivers"]
    return [
        notice
        for cut in data["cuts"]
        for part in cut["parts"]
        for notice in _transfer_notices(
            {
                "status": part["status"],
                "transfer_id": part["transfer_id"],
                "volume_wh": part["volume_wh"],
                "from_account_id": cut["from_account_id"],
                "to_account_id": receivers[part["receiver"]]["to_account_id"],
            }
        )
    ]


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


# ---------------------------------------------------------------- market


def _trade_notices(data: dict[str, Any]) -> list[Notice]:
    trades = data.get("trades") or []
    if not trades:
        return []
    order_ids = {t["buy_order_id"] for t in trades} | {t["sell_order_id"] for t in trades}
    organisations = dict(
        Order.objects.filter(pk__in=order_ids).values_list("id", "organisation_id")
    )
    market = Market.objects.filter(pk=data["order"]["market_id"]).values(
        "code", "currency"
    ).first() or {"code": str(data["order"]["market_id"]), "currency": ""}
    notices = []
    for trade in trades:
        for side, order_id in (("buy", trade["buy_order_id"]), ("sell", trade["sell_order_id"])):
            organisation_id = organisations.get(order_id)
            if organisation_id is None:
                continue
            params = {
                "trade_id": trade["trade_id"],
                "market": market["code"],
                "currency": market["currency"],
                "side": side,
                "order_id": order_id,
                "price": trade["price"],
                "volume_wh": trade["quantity_wh"],
                "amount_minor": trade["amount_minor"],
                "fee_minor": trade["fee_minor"],
            }
            # Both sides share the subject, and a notification's key is (user, entry, topic,
            # subject): should one organisation be on both sides, its members are told once.
            notices.append(
                Notice(organisation_id, Topic.TRADE_FILLED, f"trade:{trade['trade_id']}", params)
            )
    return notices


@RULES.register("order.placed")
def order_placed_trades(event: dict[str, Any]) -> list[Notice]:
    """Each trade an order made on arrival: the buyer's and the seller's members are told."""
    return _trade_notices(event["data"])


@RULES.register("order.amended")
def order_amended_trades(event: dict[str, Any]) -> list[Notice]:
    """An amended order that crossed the book: as for a new order."""
    return _trade_notices(event["data"])


# ---------------------------------------------------------------- consumers


def _consent_notices(
    topic: str,
    *,
    consent_id: int,
    household_organisation_id: int | None,
    grantee_id: int,
    facts: dict[str, Any],
) -> list[Notice]:
    grantee = Organisation.objects.filter(pk=grantee_id).values_list(
        "legal_name", flat=True
    ).first() or str(grantee_id)
    params = {"consent_id": consent_id, "grantee": grantee, **facts}
    subject = f"consent:{consent_id}"
    notices = [Notice(grantee_id, topic, subject, {**params, "role": "grantee"})]
    if household_organisation_id is not None:
        notices.append(
            Notice(household_organisation_id, topic, subject, {**params, "role": "household"})
        )
    return notices


@RULES.register("consent.granted")
def consent_granted(event: dict[str, Any]) -> list[Notice]:
    """A household granted an organisation access to a site's data: both are told."""
    data = event["data"]
    household_organisation_id = (
        Household.objects.filter(pk=data["household_id"])
        .values_list("organisation_id", flat=True)
        .first()
    )
    facts = {
        "site_id": data["site_id"],
        "purpose": data["purpose"],
        "resolution": data["resolution"],
        "valid_from": data["valid_from"][:10],
        "valid_to": data["valid_to"][:10],
    }
    return _consent_notices(
        Topic.CONSENT_GRANTED,
        consent_id=data["consent_id"],
        household_organisation_id=household_organisation_id,
        grantee_id=data["grantee_id"],
        facts=facts,
    )


@RULES.register("consent.revoked")
def consent_revoked(event: dict[str, Any]) -> list[Notice]:
    """A household withdrew an organisation's access: both are told."""
    data = event["data"]
    household_organisation_id = (
        Consent.objects.filter(pk=data["consent_id"])
        .values_list("household__organisation_id", flat=True)
        .first()
    )
    return _consent_notices(
        Topic.CONSENT_REVOKED,
        consent_id=data["consent_id"],
        household_organisation_id=household_organisation_id,
        grantee_id=data["grantee_id"],
        facts={"site_id": data["site_id"], "revoked_at": data["revoked_at"]},
    )
