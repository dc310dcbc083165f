"""Public pages: certificate lookup with its ownership timeline and proof check, statements."""

import base64
import json

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.selectors import account_numbers
from certificates import selectors
from certificates.api.serializers import (
    BundleOutputSerializer,
    HistoryStepOutputSerializer,
    StatementOutputSerializer,
)


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


ACCOUNT_FIELDS = ("from_account_id", "to_account_id", "account_id")


def _numbers(steps) -> dict[int, str]:
    """Account numbers for the account ids the steps' events name (one query)."""
    ids = {
        step.data[name]
        for step in steps
        for name in ACCOUNT_FIELDS
        if isinstance(step.data.get(name), int)
    }
    return account_numbers(account_ids=ids) if ids else {}


def _timeline(history) -> list[dict]:
    rows = HistoryStepOutputSerializer(history.steps, many=True).data
    numbers = _numbers(history.steps)
    for row, step in zip(rows, history.steps, strict=True):
        row["summary"] = _summary(step.kind, step.data, numbers)
        row["data_json"] = json.dumps(step.data, sort_keys=True, ensure_ascii=False)
    return rows


def _summary(kind: str, data: dict, numbers: dict[int, str] | None = None) -> str:
    """One line a person can read: what happened to whose units."""
    if "issuance" in data:
        issued = data["issuance"]
        return (
            f"Issued {issued['volume_wh']} Wh of device {issued['device_id']} (units "
            f"{issued['unit_start']} to {issued['unit_end']}, {len(issued['periods'])} periods)"
        )
    numbers = numbers or {}

    def account(key: str) -> str:
        return numbers.get(data[key], f"#{data[key]}")

    if kind == "certificate.transferred":
        return (
            f"Transfer #{data['transfer_id']} ({data['status']}): {data['volume_wh']} Wh "
            f"from account {account('from_account_id')} to account {account('to_account_id')}"
        )
    if kind == "certificate.batch_transferred":
        total = sum(t["volume_wh"] for t in data["transfers"])
        return f"Batch transfer of {total} Wh to account {account('to_account_id')}"
    if kind.startswith("certificate.transfer_"):
        return f"Transfer #{data['transfer_id']} {kind.rsplit('_', 1)[1]}"
    if kind == "certificate.retired":
        return (
            f"Retired {data['volume_wh']} Wh for a beneficiary in "
            f"{data['beneficiary_country']} ({data['purpose']})"
        )
    if kind == "certificate.expired":
        return f"Expired on {data['on']}"
    if kind == "certificate.withdrawn":
        return f"Withdrawn by the issuing body: {data['reason']}"
    return _cross_registry_summary(kind, data, account) or kind


def _cross_registry_summary(kind: str, data: dict, account) -> str:
    if kind == "certificate.exported":
        return (
            f"Exported {data['volume_wh']} Wh to account {data['destination_account']} at "
            f"{data['destination']}"
        )
    if kind == "certificate.export_completed":
        return f"Imported at {data['destination']} (signed receipt)"
    if kind == "certificate.export_returned":
        return f"Refused by {data['destination']} ({data['reason']}); the units are back"
    if kind == "certificate.imported":
        return (
            f"Imported {data['volume_wh']} Wh from {data['origin']} (its entry "
            f"#{data['export_seq']}) into account {account('account_id')}"
        )
    if kind == "certificate.import_rejected":
        return f"Refused an export from {data['origin']} ({data['reason']})"
    return ""


def _provenance(history) -> list[dict]:
    """The other registries' entries about the units, decoded, one list per registry."""
    if history.imported is None:
        return []
    hops = []
    for hop in history.imported.provenance:
        steps = []
        for entry in hop.get("entries", []):
            try:
                event = json.loads(base64.b64decode(entry["event_b64"]))
                summary = _summary(event["type"], event["data"])
            except (KeyError, TypeError, ValueError):
                summary = "(not a readable event)"
            steps.append({"seq": entry.get("seq"), "summary": summary})
        hops.append({"origin": hop.get("origin"), "verified": hop.get("verified"), "steps": steps})
    return hops


@require_GET
def certificate_lookup(request: HttpRequest) -> HttpResponse:
    """Find a certificate by bundle id, or by device and unit (Wh) number."""
    bundle_id = _int(request.GET.get("bundle"))
    device_id, unit = _int(request.GET.get("device")), _int(request.GET.get("unit"))
    error = ""
    if bundle_id is not None:
        if selectors.bundle_public(bundle_id=bundle_id) is not None:
            return redirect("certificates:certificate", bundle_id=bundle_id)
        error = f"No bundle {bundle_id}."
    elif device_id is not None and unit is not None:
        bundle = selectors.bundle_for_unit(device_id=device_id, unit=unit)
        if bundle is not None:
            return redirect(reverse("certificates:certificate", args=[bundle.pk]) + f"?unit={unit}")
        error = f"Unit {unit} of device {device_id} was never issued."
    elif request.GET:
        error = "Give a bundle id, or a device id and a unit number."
    return render(request, "certificates/lookup.html", {"error": error, "query": request.GET})


@require_GET
def certificate_page(request: HttpRequest, bundle_id: int) -> HttpResponse:
    """A certificate bundle: attributes, ownership timeline, proofs checked in the browser."""
    bundle = selectors.bundle_public(bundle_id=bundle_id)
    if bundle is None:
        raise Http404("No such certificate bundle.")
    history = selectors.bundle_history(bundle_id=bundle.pk)
    context = {
        "bundle": BundleOutputSerializer(bundle).data,
        "history": history,
        "timeline": _timeline(history),
        "provenance": _provenance(history),
        "verify_json": json.dumps(history.verify_bundle()),
        "unit": _int(request.GET.get("unit")),
    }
    return render(request, "certificates/certificate.html", context)


def _statement(public_id):
    retirement = selectors.retirement_by_public_id(public_id=public_id)
    if retirement is None:
        raise Http404("No such retirement statement.")
    return retirement, selectors.retirement_statement(retirement=retirement)


@require_GET
def statement_page(request: HttpRequest, public_id) -> HttpResponse:
    """The printable retirement statement."""
    retirement, statement = _statement(public_id)
    data = StatementOutputSerializer(statement, context={"request": request}).data
    steps = HistoryStepOutputSerializer(statement["history"], many=True).data
    numbers = _numbers(statement["history"])
    for row, step in zip(steps, statement["history"], strict=True):
        row["summary"] = _summary(step.kind, step.data, numbers)
    context = {
        "retirement": retirement,
        "statement": data,
        "timeline": steps,
        "withdrawals": statement["withdrawals"],
        "verify_bundle": {"checkpoint": data["checkpoint"], "entries": data["entries"]},
        "claim_json": json.dumps(data["claim"], indent=2, sort_keys=True),
    }
    return render(request, "certificates/statement.html", context)


@require_GET
def statement_json(request: HttpRequest, public_id) -> HttpResponse:
    """The statement as a file for `python -m ledger.verify history --file`."""
    _retirement, statement = _statement(public_id)
    data = StatementOutputSerializer(statement, context={"request": request}).data
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="statement-{public_id}.json"'
    return response
