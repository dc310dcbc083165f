"""Share kinds: on each issuance, a share of the units the source account received moves on.

- `ppa_pay_as_produced`: the buyer takes `share_bp` of the seller's output of one device at
  a fixed price per MWh (integer minor units) or a price indexed to an energy market
  (`contracts.kinds.pricing`); the money owed becomes an obligation.
- `standing_transfer`: the holder forwards `share_bp` of its new certificates (of one
  device, or of all) to another account.

Every share contract that takes from the same source account (and device) in force at the
issuance is split in one largest-remainder split per period, in contract order, with the
rest staying with the source: together they never take more than was issued and no Wh
is lost to rounding. The split reads the issuance's original bundles (facts that never
change: `issued_into` finds them even after one moved whole), so the same issuance always
gives the same allocation.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import F, Q

from assets.models import Device, DeviceOwner
from certificates.allocation import hour_number, split_by_weights
from certificates.models import Bundle, Issuance, Transfer
from contracts.errors import IndexPriceUnavailable, InvalidTerms, TermsUnmet
from contracts.kinds import pricing, shape
from contracts.kinds.base import (
    MAX_SHARE_BP,
    Plan,
    TermsReader,
    Validated,
)
from contracts.models import Contract
from registry.joined_rows import JoinedSelect, part

PPA = "ppa_pay_as_produced"
PPA_SHAPED = "ppa_shaped"
STANDING_TRANSFER = "standing_transfer"
PPA_KINDS = (PPA, PPA_SHAPED)
# Every kind that takes from a source account on each issuance (a shaped PPA takes a
# volume, contracts.kinds.shape, the others a share).
SHARE_KINDS = (PPA, STANDING_TRANSFER, PPA_SHAPED)
WH_PER_MWH = 1_000_000


def validate_ppa(terms: Any) -> Validated:
    return _validate_ppa(terms, shaped=False)


def validate_ppa_shaped(terms: Any) -> Validated:
    return _validate_ppa(terms, shaped=True)


def _validate_ppa(terms: Any, *, shaped: bool) -> Validated:
    fields = {"device_id", "seller_account", "buyer_account", "price_per_mwh_minor"}
    fields |= {"price_index", "currency", "shape" if shaped else "share_bp"}
    read = TermsReader(terms, fields)
    device_id = read.integer("device_id", 1, 2**53)
    if not Device.objects.filter(pk=device_id).exists():
        raise TermsUnmet(fields={"device_id": ["no such device"]})
    seller = read.account("seller_account")
    buyer = read.account("buyer_account")
    if not DeviceOwner.objects.filter(device_id=device_id, account_id=seller.pk).exists():
        raise TermsUnmet(fields={"seller_account": ["receives none of the device's output"]})
    if seller.organisation_id == buyer.organisation_id:
        raise TermsUnmet(fields={"buyer_account": ["the buyer is another organisation"]})
    if shaped:
        share = None
        volume: dict[str, Any] = {"shape": shape.validate_shape(read.terms.get("shape"))}
    else:
        share = read.integer("share_bp", 1, MAX_SHARE_BP)
        volume = {"share_bp": share}
    currency = read.currency("currency")
    clean = {
        "device_id": device_id,
        "seller_account": seller.number,
        "buyer_account": buyer.number,
        **volume,
        **pricing.validate_price(read, currency),
        "currency": currency,
    }
    return Validated(
        terms=clean,
        parties=[(seller.organisation_id, "seller"), (buyer.organisation_id, "buyer")],
        source_account_id=seller.pk,
        device_id=device_id,
        share_bp=share,
    )


def validate_standing_transfer(terms: Any) -> Validated:
    read = TermsReader(terms, {"from_account", "to_account", "share_bp", "device_id"})
    source = read.account("from_account")
    target = read.account("to_account")
    if source.pk == target.pk:
        raise TermsUnmet(fields={"to_account": ["another account than from_account"]})
    device_id = read.integer("device_id", 1, 2**53, required=False)
    if device_id is not None and not Device.objects.filter(pk=device_id).exists():
        raise TermsUnmet(fields={"device_id": ["no such device"]})
    share = read.integer("share_bp", 1, MAX_SHARE_BP)
    clean = {"from_account": source.number, "to_account": target.number, "share_bp": share}
    if device_id is not None:
        clean["device_id"] = device_id
    return Validated(
        terms=clean,
        parties=[(source.organisation_id, "holder")],
        source_account_id=source.pk,
        device_id=device_id,
        share_bp=share,
    )


def _target_number(contract: Contract) -> str:
    terms = contract.terms
    return terms["buyer_account"] if contract.kind in PPA_KINDS else terms["to_account"]


def issued_into(account_id: int, issuance_id: int) -> list[tuple]:
    """(period_start, period_end, wh) of the root bundles the issuance credited to
    `account_id`, in period order, wherever they are now.

    A bundle moved whole keeps its row but takes the receiver's account, so its first
    transfer's `from_account` is where it was issued; without this a dry run after an
    execution that moved whole bundles showed less than the contract took. Two indexed
    reads bounded by the issuance's size (its roots, then their transfers), never a scan
    of the account's transfer history.
    """
    roots = list(
        Bundle.objects.filter(issuance_id=issuance_id, parent__isnull=True)
        .order_by("period_start", "pk")
        .values_list("pk", "account_id", "period_start", "period_end", "unit_start", "unit_end")
    )
    first_holder: dict[int, int] = {}
    moves = (
        Transfer.objects.filter(bundle_id__in=[root[0] for root in roots])
        .order_by("bundle_id", "pk")
        .values_list("bundle_id", "from_account_id")
    )
    for bundle_id, from_account_id in moves:
        first_holder.setdefault(bundle_id, from_account_id)
    return [
        (start, end, u_end - u_start)
        for pk, holder, start, end, u_start, u_end in roots
        if first_holder.get(pk, holder) == account_id
    ]


_RANGES = ("unit_start", "unit_end", "period_start", "period_end")
_ISSUED_AND_LIVE = JoinedSelect(
    part(
        Bundle,
        "b",
        # in the model's field order, the order of each row's values
        ["id", "account_id", "parent_id", *_RANGES, "status"],
    ),
    # the account a root moved whole left from (its first transfer's; an index probe
    # on the transfers' (bundle, id))
    extra=[
        "(SELECT t.from_account_id FROM certificates_transfer t"
        " WHERE t.bundle_id = b.id ORDER BY t.id LIMIT 1)"
    ],
)


def issued_and_live(
    account_id: int, issuance_id: int
) -> tuple[list[tuple], dict[Any, list[tuple[int, int]]]]:
    """`issued_into(account_id, issuance_id)` and `live_bundles(account_id, issuance_id)`
    read in one statement (a group of executions reads both per source account): the
    issuance's roots with the account of their first transfer, and its active bundles at
    the account. Hand-written: compiling it through the ORM cost twice its round trip."""
    rows = _ISSUED_AND_LIVE.rows(
        "FROM certificates_bundle b WHERE b.issuance_id = %s"
        " AND (b.parent_id IS NULL OR (b.account_id = %s AND b.status = %s))"
        " ORDER BY b.period_start, b.unit_start",
        [issuance_id, account_id, Bundle.Status.ACTIVE],
    )
    roots = []
    live: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    for pk, holder, parent, u_start, u_end, start, end, status, first in rows:
        if parent is None and (holder if first is None else first) == account_id:
            roots.append((start, pk, end, u_end - u_start))
        if holder == account_id and status == Bundle.Status.ACTIVE:
            live[start].append((pk, u_end - u_start))
    roots.sort(key=lambda root: (root[0], root[1]))
    return [(start, end, wh) for start, _pk, end, wh in roots], live


def issuances_into(account_id: int, start, end) -> list[int]:
    """The issuances that credited `account_id` root bundles produced in [start, end):
    those still there, and those moved away whole (their first transfer left from it)."""
    held = Bundle.objects.filter(
        account_id=account_id,
        parent__isnull=True,
        period_start__gte=start,
        period_start__lt=end,
    ).values_list("issuance_id", flat=True)
    moved_away = Transfer.objects.filter(
        from_account_id=account_id,
        source_id=F("bundle_id"),
        bundle__parent__isnull=True,
        bundle__period_start__gte=start,
        bundle__period_start__lt=end,
    ).values_list("bundle__issuance_id", flat=True)
    return sorted(set(held) | set(moved_away))


def in_force_at(queryset, moment):
    """Contracts that were active at `moment` (activated before, not ended before)."""
    return queryset.filter(activated_at__lte=moment).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=moment)
    )


def share_group(contract: Contract, device_id: int, moment) -> list[Contract]:
    """The share contracts splitting the source account's units of `device_id` at `moment`."""
    group = Contract.objects.filter(
        kind__in=SHARE_KINDS, source_account_id=contract.source_account_id
    ).filter(Q(device__isnull=True) | Q(device_id=device_id))
    return share_group_among(list(in_force_at(group, moment).order_by("pk")), contract)


def share_group_among(in_force: list[Contract], contract: Contract) -> list[Contract]:
    """`share_group` of `contract` from the share contracts in force for the same device
    and moment (`contracts.selectors.share_contracts_in_force`, read once for a group):
    those on its source account, in primary-key order, itself included."""
    members = [c for c in in_force if c.source_account_id == contract.source_account_id]
    if contract.pk not in {member.pk for member in members}:
        members = sorted([*members, contract], key=lambda c: c.pk)
    return members


def allocate(
    contract: Contract,
    base: list[tuple],
    group: list[Contract],
    splits: dict[Any, tuple[list[int], list[int] | None]] | None = None,
) -> list[tuple]:
    """(period_start, period_end, wh) this contract takes of each base period.

    `splits` keeps each period's split (the covering contracts' ids and their parts) for
    the next contract of the same `base` and `group`: a group of executions splits each
    period once, not once per contract."""
    out = []
    for period_start, period_end, volume in base:
        found = None if splits is None else splits.get(period_start)
        if found is None:
            found = _split(period_start, volume, group)
            if splits is not None:
                splits[period_start] = found
        covering, parts = found
        if contract.pk not in covering:
            continue
        if parts is None:  # never after the overlap rule; refuse rather than over-take
            raise InvalidTerms("Share contracts on this output add up to more than 100%.")
        part = parts[covering.index(contract.pk)]
        if part:
            out.append((period_start, period_end, part))
    return out


def _split(period_start, volume: int, group: list[Contract]) -> tuple[list[int], list[int] | None]:
    """The ids of the share contracts covering the period, and each one's Wh of `volume`
    (the last part, the rest, stays with the source); no parts if they add up to more
    than 100%."""
    covering = [
        c for c in group if c.share_bp is not None and c.start_at <= period_start < c.end_at
    ]
    weights = [c.share_bp for c in covering]
    weights.append(MAX_SHARE_BP - sum(weights))
    if weights[-1] < 0:
        return [c.pk for c in covering], None
    parts = split_by_weights(volume, weights, first_tie=hour_number(period_start) % len(weights))
    return [c.pk for c in covering], parts


def plan_issuance(
    contract: Contract,
    issuance: Issuance,
    base: list[tuple] | None = None,
    group: list[Contract] | None = None,
    live: dict[Any, list[tuple[int, int]]] | None = None,
    splits: dict | None = None,
) -> Plan:
    """What the contract takes of one issuance, and the live bundles it takes them from.

    `base` (`issued_into`) and `group` (`share_group`) may be given when the caller read
    them for several contracts on one source account: both are facts of the issuance that
    the executions do not change. The live bundles (`live_bundles`) are read here unless
    `live` gives them (a group planning each contract on what the previous ones take).
    `splits` carries the periods' splits from one contract of `group` to the next
    (`allocate`)."""
    trigger = f"issuance:{issuance.pk}"
    if contract.device_id is not None and contract.device_id != issuance.device_id:
        return _plan(
            contract, trigger, issuance, [], [], [] if contract.kind == PPA_SHAPED else None
        )
    if base is None:
        base = issued_into(contract.source_account_id, issuance.pk)
    if group is None or contract.pk not in {member.pk for member in group}:
        group = share_group(contract, issuance.device_id, issuance.issued_at)
        splits = None  # kept for the group given, not this one
    if contract.kind == PPA_SHAPED:
        allocations, shape_rows = shape.allocate_shaped(contract, base, group)
    else:
        allocations, shape_rows = allocate(contract, base, group, splits), None
    if live is None:
        live = live_bundles(contract.source_account_id, issuance.pk)
    return _plan(contract, trigger, issuance, allocations, live, shape_rows)


def live_bundles(account_id: int, issuance_id: int) -> dict[Any, list[tuple[int, int]]]:
    """The issuance's active bundles at the account: (id, Wh) by period start, in unit
    order (what a plan takes from, first units first)."""
    live: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    rows = (
        Bundle.objects.filter(
            issuance_id=issuance_id, account_id=account_id, status=Bundle.Status.ACTIVE
        )
        .order_by("period_start", "unit_start")
        .values_list("pk", "period_start", "unit_start", "unit_end")
    )
    for pk, period_start, unit_start, unit_end in rows:
        live[period_start].append((pk, unit_end - unit_start))
    return live


def _plan(contract, trigger, issuance, allocations, live, shape_rows=None) -> Plan:
    items: list[tuple[int, int]] = []
    short: list[dict[str, Any]] = []
    for period_start, _end, wanted in allocations:
        need = wanted
        for pk, volume in live.get(period_start, []):
            if need == 0:
                break
            take = min(volume, need)
            items.append((pk, take))
            need -= take
        if need:
            short.append({"period_start": period_start, "missing_wh": need})
    total = sum(wh for _s, _e, wh in allocations)
    summary: dict[str, Any] = {
        "kind": contract.kind,
        "trigger": trigger,
        "version": contract.version,
        "issuance_id": None if issuance is None else issuance.pk,
        "from_account": _source_number(contract),
        "to_account": _target_number(contract),
        "volume_wh": total,
        "periods": [[s, e, wh] for s, e, wh in allocations],
    }
    if shape_rows is not None:
        summary["shape"] = [[s, e, want, take] for s, e, want, take in shape_rows]
        summary["shortfall_wh"] = sum(want - take for _s, _e, want, take in shape_rows)
    plan = Plan(trigger=trigger, summary=summary)
    if short:
        plan.shortfall = {"periods": short[:10], "count": len(short)}
    if items:
        plan.transfers.append((_target_number(contract), items))
    if contract.kind in PPA_KINDS and total:
        # Half-up to the minor unit, per execution: deterministic and within 0.5 of exact.
        try:
            priced = pricing.price_periods(contract.terms, summary["periods"])
        except IndexPriceUnavailable as exc:
            plan.refusal = exc
            return plan
        if "index_prices" in priced:
            summary["index_market_id"] = priced["market_id"]
            summary["index_prices"] = priced["index_prices"]
        plan.obligation = {
            "payer_role": "buyer",
            "payee_role": "seller",
            "volume_wh": total,
            "price_per_mwh_minor": contract.terms.get("price_per_mwh_minor"),
            "amount_minor": priced["amount_minor"],
            "currency": contract.terms["currency"],
        }
        summary["obligation"] = plan.obligation
    return plan


def _source_number(contract: Contract) -> str:
    terms = contract.terms
    return terms["seller_account"] if contract.kind in PPA_KINDS else terms["from_account"]


def plan_period(contract: Contract, start, end) -> Plan:
    """Dry run over [start, end): what the contract takes of every issuance in it, as if
    each were executed now against the original bundles (no sources, no writes)."""
    issuance_ids = issuances_into(contract.source_account_id, start, end)
    periods: list[list[Any]] = []
    total = shortfall = 0
    for issuance in Issuance.objects.filter(pk__in=issuance_ids).order_by("pk"):
        plan = plan_issuance(contract, issuance)
        inside = [p for p in plan.summary["periods"] if start <= p[0] < end]
        periods += inside
        total += sum(p[2] for p in inside)
        shortfall += sum(r[2] - r[3] for r in plan.summary.get("shape", []) if start <= r[0] < end)
    priced: dict[str, Any] = {}
    refusal = None
    if contract.kind in PPA_KINDS:
        try:
            priced = pricing.price_periods(contract.terms, periods)
        except IndexPriceUnavailable as exc:
            refusal = exc
    summary = {
        "kind": contract.kind,
        "from_account": _source_number(contract),
        "to_account": _target_number(contract),
        "volume_wh": total,
        "periods": periods,
    }
    if contract.kind == PPA_SHAPED:
        summary["shortfall_wh"] = shortfall
    if contract.kind in PPA_KINDS:
        summary["amount_minor_estimate"] = priced.get("amount_minor")
        summary["currency"] = contract.terms["currency"]
        if "index_prices" in priced:
            summary["index_market_id"] = priced["market_id"]
            summary["index_prices"] = priced["index_prices"]
    plan = Plan(trigger=f"dry-run:{start.isoformat()}/{end.isoformat()}", summary=summary)
    plan.refusal = refusal
    return plan
