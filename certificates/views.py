"""Public pages: certificate lookup with its ownership timeline and proof check, statements.

Every word on them is translatable (English and Russian, in the web app's catalogue)."""

import base64
import json

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.http import require_GET

from accounts.selectors import account_numbers
from certificates import selectors
from certificates.api.serializers import (
    BundleOutputSerializer,
    HistoryStepOutputSerializer,
    StatementOutputSerializer,
)
from registry.pdf import pdf_response


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


ACCOUNT_FIELDS = ("from_account_id", "to_account_id", "account_id")


def _account_ids(data: dict) -> set[int]:
    ids = {data[name] for name in ACCOUNT_FIELDS if isinstance(data.get(name), int)}
    ids |= {r["to_account_id"] for r in data.get("receivers") or () if isinstance(r, dict)}
    return ids


def _numbers(steps) -> dict[int, str]:
    """Account numbers for the account ids the steps' events name (one query)."""
    ids = set().union(*(_account_ids(step.data) for step in steps))
    return account_numbers(account_ids=ids) if ids else {}


def _timeline(history) -> list[dict]:
    rows = HistoryStepOutputSerializer(history.steps, many=True).data
    numbers = _numbers(history.steps)
    for row, step in zip(rows, history.steps, strict=True):
        row["summary"] = _summary(step.kind, step.data, numbers)
        row["data_json"] = json.dumps(step.data, sort_keys=True, ensure_ascii=False)
    return rows


# Words for the states the public pages name; the model's labels stay English for the API.
BUNDLE_STATUSES = {
    "active": pgettext_lazy("bundle status", "active"),
    "reserved": pgettext_lazy("bundle status", "reserved"),
    "split": pgettext_lazy("bundle status", "split"),
    "retired": pgettext_lazy("bundle status", "retired"),
    "expired": pgettext_lazy("bundle status", "expired"),
    "withdrawn": pgettext_lazy("bundle status", "withdrawn"),
    "exported": pgettext_lazy("bundle status", "exported"),
}
TRANSFER_STATUSES = {
    "completed": pgettext_lazy("transfer status", "completed"),
    "pending": pgettext_lazy("transfer status", "waiting for the receiver"),
    "accepted": pgettext_lazy("transfer status", "accepted"),
    "rejected": pgettext_lazy("transfer status", "rejected"),
    "withdrawn": pgettext_lazy("transfer status", "withdrawn by the sender"),
    "cancelled": pgettext_lazy("transfer status", "cancelled"),
}
PURPOSES = {
    "disclosure": gettext_lazy("Disclosure (fuel mix)"),
    "scope2_market_based": gettext_lazy("Scope 2 market-based"),
    "hourly_matching": gettext_lazy("Hourly (24/7) matching"),
    "voluntary": gettext_lazy("Voluntary claim"),
    "support_scheme": gettext_lazy("Support scheme"),
    "other": gettext_lazy("Other"),
}
SUPPORTS = {
    "none": gettext_lazy("No public support"),
    "investment": gettext_lazy("Investment support"),
    "production": gettext_lazy("Production support"),
    "other": gettext_lazy("Other support"),
}
EXPORT_STATUSES = {
    "pending": gettext_lazy("Waiting for delivery"),
    "imported": gettext_lazy("Imported by the destination"),
    "returned": gettext_lazy("Refused by the destination and returned"),
}


def _word(words: dict, value) -> str:
    return str(words.get(value, value))


def _summary(kind: str, data: dict, numbers: dict[int, str] | None = None) -> str:
    """One line a person can read, in the active language: what happened to whose units."""
    if "issuance" in data:
        issued = data["issuance"]
        periods = len(issued["periods"])
        return ngettext(
            "Issued %(wh)s Wh of device %(device)s (units %(start)s to %(end)s, "
            "%(periods)s period)",
            "Issued %(wh)s Wh of device %(device)s (units %(start)s to %(end)s, "
            "%(periods)s periods)",
            periods,
        ) % {
            "wh": issued["volume_wh"],
            "device": issued["device_id"],
            "start": issued["unit_start"],
            "end": issued["unit_end"],
            "periods": periods,
        }
    numbers = numbers or {}

    def account(key: str) -> str:
        return numbers.get(data[key], f"#{data[key]}")

    if kind == "certificate.transferred":
        return _(
            "Transfer #%(id)s (%(status)s): %(wh)s Wh from account %(from)s to account %(to)s"
        ) % {
            "id": data["transfer_id"],
            "status": _word(TRANSFER_STATUSES, data["status"]),
            "wh": data["volume_wh"],
            "from": account("from_account_id"),
            "to": account("to_account_id"),
        }
    if kind == "certificate.batch_transferred":
        total = sum(t["volume_wh"] for t in data["transfers"])
        return _("Batch transfer of %(wh)s Wh to account %(to)s") % {
            "wh": total,
            "to": account("to_account_id"),
        }
    if kind == "certificate.cut_transferred":
        receivers = data["receivers"]
        return _("Cut for contracts: %(wh)s Wh to accounts %(to)s") % {
            "wh": sum(part["volume_wh"] for cut in data["cuts"] for part in cut["parts"]),
            "to": ", ".join(
                numbers.get(r["to_account_id"], f"#{r['to_account_id']}") for r in receivers
            ),
        }
    if kind.startswith("certificate.transfer_"):
        return _("Transfer #%(id)s %(what)s") % {
            "id": data["transfer_id"],
            "what": _word(TRANSFER_STATUSES, kind.rsplit("_", 1)[1]),
        }
    if kind == "certificate.retired":
        return _("Retired %(wh)s Wh for a beneficiary in %(country)s (%(purpose)s)") % {
            "wh": data["volume_wh"],
            "country": data["beneficiary_country"],
            "purpose": _word(PURPOSES, data["purpose"]),
        }
    if kind == "certificate.expired":
        return _("Expired on %(day)s") % {"day": data["on"]}
    if kind == "certificate.withdrawn":
        return _("Withdrawn by the issuing body: %(reason)s") % {"reason": data["reason"]}
    return _cross_registry_summary(kind, data, account) or kind


def _cross_registry_summary(kind: str, data: dict, account) -> str:
    if kind == "certificate.exported":
        return _("Exported %(wh)s Wh to account %(to)s at %(destination)s") % {
            "wh": data["volume_wh"],
            "to": data["destination_account"],
            "destination": data["destination"],
        }
    if kind == "certificate.export_completed":
        return _("Imported at %(destination)s (signed receipt)") % {
            "destination": data["destination"]
        }
    if kind == "certificate.export_returned":
        return _("Refused by %(destination)s (%(reason)s); the units are back") % {
            "destination": data["destination"],
            "reason": data["reason"],
        }
    if kind == "certificate.imported":
        return _("Imported %(wh)s Wh from %(origin)s (its entry #%(seq)s) into account %(to)s") % {
            "wh": data["volume_wh"],
            "origin": data["origin"],
            "seq": data["export_seq"],
            "to": account("account_id"),
        }
    if kind == "certificate.import_rejected":
        return _("Refused an export from %(origin)s (%(reason)s)") % {
            "origin": data["origin"],
            "reason": data["reason"],
        }
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
                summary = _("(not a readable event)")
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
        error = _("No bundle %(id)s.") % {"id": bundle_id}
    elif device_id is not None and unit is not None:
        bundle = selectors.bundle_for_unit(device_id=device_id, unit=unit)
        if bundle is not None:
            return redirect(reverse("certificates:certificate", args=[bundle.pk]) + f"?unit={unit}")
        error = _("Unit %(unit)s of device %(device)s was never issued.") % {
            "unit": unit,
            "device": device_id,
        }
    elif request.GET:
        error = _("Give a bundle id, or a device id and a unit number.")
    return render(request, "certificates/lookup.html", {"error": error, "query": request.GET})


@require_GET
def certificate_page(request: HttpRequest, bundle_id: int) -> HttpResponse:
    """A certificate bundle: attributes, ownership timeline, proofs checked in the browser."""
    bundle = selectors.bundle_public(bundle_id=bundle_id)
    if bundle is None:
        raise Http404("No such certificate bundle.")
    history = selectors.bundle_history(bundle_id=bundle.pk)
    data = BundleOutputSerializer(bundle).data
    context = {
        "bundle": data,
        "status": _word(BUNDLE_STATUSES, data["status"]),
        "support": _word(SUPPORTS, data["support"] or "none"),
        "export_status": _word(EXPORT_STATUSES, history.exported.status)
        if history.exported
        else "",
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


def _statement_context(request: HttpRequest, retirement, statement: dict) -> dict:
    data = StatementOutputSerializer(statement, context={"request": request}).data
    steps = HistoryStepOutputSerializer(statement["history"], many=True).data
    numbers = _numbers(statement["history"])
    for row in data["certificates"]:
        row["support_label"] = _word(SUPPORTS, row["support"] or "none")
    for row, step in zip(steps, statement["history"], strict=True):
        row["summary"] = _summary(step.kind, step.data, numbers)
    return {
        "retirement": retirement,
        "purpose": _word(PURPOSES, retirement.purpose),
        "statement": data,
        "timeline": steps,
        "withdrawals": statement["withdrawals"],
        "verify_bundle": {
            "checkpoint": data["checkpoint"],
            "entries": data["entries"],
            "completeness": data["completeness"],
        },
        "claim_json": json.dumps(data["claim"], indent=2, sort_keys=True),
    }


@require_GET
def statement_page(request: HttpRequest, public_id) -> HttpResponse:
    """The printable retirement statement."""
    context = _statement_context(request, *_statement(public_id))
    return render(request, "certificates/statement.html", context)


def statement_pdf_response(request: HttpRequest, retirement, statement: dict) -> HttpResponse:
    """The statement page as a PDF download, in the active language (its print layout).

    The API's `GET /api/v1/statements/{id}/` with `Accept: application/pdf` sends the same.
    """
    context = {**_statement_context(request, retirement, statement), "pdf": True}
    html = render_to_string("certificates/statement.html", context, request=request)
    return pdf_response(html, filename=f"statement-{retirement.public_id}.pdf")


@require_GET
def statement_pdf(request: HttpRequest, public_id) -> HttpResponse:
    """The statement as a PDF file (the "Download PDF" link of the statement page)."""
    return statement_pdf_response(request, *_statement(public_id))


@require_GET
def statement_json(request: HttpRequest, public_id) -> HttpResponse:
    """The statement as a file for `python -m ledger.verify history --file`."""
    _retirement, statement = _statement(public_id)
    data = StatementOutputSerializer(statement, context={"request": request}).data
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="statement-{public_id}.json"'
    return response
