"""Settlement status and "Pay now" on the pages: charging bills (household page) and PPA
settlement obligations (holdings page).

Reads go through the charging and contracts selectors, the button calls the same services
as the API (`charging.services.bill_pay`, `contracts.services.obligation_pay`), which pay
through the market's hooks. The rows are a fixed number of queries whatever their count.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import Membership, Organisation, User
from accounts.permissions import user_can_act_for
from charging import selectors as charging_selectors
from charging import services as charging_services
from charging.models import Bill
from contracts import selectors as contract_selectors
from contracts import services as contract_services
from contracts.models import SettlementObligation
from web.views.common import call_service, role_required

# Why a payment is still open, for the reason codes the payers can fix themselves.
REASONS = {
    "insufficient_funds": gettext_lazy("insufficient funds"),
}


def _reason(code: str) -> str:
    return str(REASONS.get(code, code))


def household_bills(user: User, household: Organisation) -> list[dict]:
    """The household's latest 20 bills with their settlement state (two queries)."""
    can_pay = user_can_act_for(user, household, role=Membership.Role.OPERATOR)
    bills = (
        charging_selectors.bill_list(user=user)
        .filter(billed_organisation=household)
        .order_by("-billed_at", "-pk")[:20]
    )
    return [
        {
            "bill": bill,
            "settled": bill.settlement == Bill.Settlement.SETTLED,
            "reason": _reason(bill.settlement_reason),
            "can_pay": can_pay and bill.settlement == Bill.Settlement.PENDING,
        }
        for bill in bills
    ]


def payer_obligations(user: User, organisations: list[Organisation]) -> list[dict]:
    """Settlement obligations the user's organisations owe (latest 20)."""
    payers = {o.pk for o in organisations if user_can_act_for(user, o)}
    rows = (
        contract_selectors.obligation_list(user=user)
        .filter(payer_id__in=[o.pk for o in organisations])
        .order_by("-created_at", "-pk")[:20]
    )
    return [
        {
            "obligation": row,
            "settled": row.status == SettlementObligation.Status.SETTLED,
            "reason": _reason(row.reason_code),
            "can_pay": row.payer_id in payers and row.status == SettlementObligation.Status.OPEN,
        }
        for row in rows
    ]


def _household(roles) -> bool:
    return roles.household is not None


def _trader(roles) -> bool:
    return bool(roles.trader)


@require_POST
@role_required(_household)
def bill_pay(request: HttpRequest, bill_id: int) -> HttpResponse:
    """Pay a pending charging bill now (htmx swaps the bills table and the messages)."""
    call_service(
        request,
        charging_services.bill_pay,
        _("Bill %(id)s paid.") % {"id": bill_id},
        bill_id=bill_id,
    )
    return redirect("web:household")


@require_POST
@role_required(_trader)
def obligation_pay(request: HttpRequest, obligation_id: int) -> HttpResponse:
    """Pay an open settlement obligation now (htmx swaps the table and the messages)."""
    call_service(
        request,
        contract_services.obligation_pay,
        _("Payment %(id)s made.") % {"id": obligation_id},
        obligation_id=obligation_id,
    )
    return redirect("web:holdings")
