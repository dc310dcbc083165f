"""Admin for the issuing body. Rows change only through the services (actions call them)."""

import json

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse
from django.utils.html import format_html

from certificates import services
from certificates.models import (
    Bundle,
    CertificateExport,
    CertificateImport,
    ForeignDevice,
    Issuance,
    IssuanceRequest,
    Retirement,
    Transfer,
    TransferPolicy,
    Withdrawal,
)
from registry.admin import ReadOnlyAdmin
from registry.errors import DomainError


def _reason_form(modeladmin, request, queryset, *, action: str, title: str, run) -> object:
    """Ask for a reason on an intermediate page, then `run(reason)`; None returns to the list."""
    if "apply" in request.POST:
        reason = request.POST.get("reason", "").strip()
        if reason:
            run(reason)
            return None
        modeladmin.message_user(request, "A reason is required.", messages.ERROR)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "objects": queryset,
        "action": action,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/certificates/reason_form.html", context)


@admin.register(Bundle)
class BundleAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "device",
        "unit_start",
        "unit_end",
        "period_start",
        "account",
        "status",
        "expires_on",
    ]
    list_filter = ["status"]
    search_fields = ["=id", "=account__number"]
    raw_id_fields = ["device", "issuance", "account", "parent"]
    list_select_related = ["device", "account"]
    show_full_result_count = False
    actions = ["withdraw"]

    @admin.action(description="Withdraw selected bundles (issued in error)")
    def withdraw(self, request, queryset):
        def run(reason: str) -> None:
            try:
                withdrawal = services.certificate_withdraw(
                    actor=request.user,
                    reason=reason,
                    bundle_ids=list(queryset.values_list("pk", flat=True)),
                )
            except DomainError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
                return
            self.message_user(
                request,
                f"Withdrawal #{withdrawal.pk}: {withdrawal.volume_wh} Wh withdrawn or flagged.",
                messages.SUCCESS,
            )

        return _reason_form(
            self, request, queryset, action="withdraw", title="Withdraw certificates", run=run
        )


@admin.register(Issuance)
class IssuanceAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "device",
        "period_start",
        "period_end",
        "volume_wh",
        "technology_code",
        "grid_area_code",
        "imported_from",
        "issued_at",
    ]
    list_filter = ["granularity", "country", "imported_from"]
    raw_id_fields = ["device", "request", "issuing_body", "grid_area"]


@admin.register(IssuanceRequest)
class IssuanceRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "device",
        "organisation",
        "period_start",
        "period_end",
        "granularity",
        "status",
        "created_at",
    ]
    list_filter = ["status", "granularity"]
    actions = ["approve", "reject"]

    @admin.action(description="Approve selected requests (issues the certificates)")
    def approve(self, request, queryset) -> None:
        done = 0
        for req in queryset.order_by("pk"):
            try:
                services.issuance_request_approve(actor=request.user, request_id=req.pk)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"Request #{req.pk}: {exc.detail}", messages.ERROR)
        if done:
            self.message_user(request, f"Approved and issued {done} request(s).", messages.SUCCESS)

    @admin.action(description="Reject selected requests")
    def reject(self, request, queryset):
        def run(reason: str) -> None:
            done = 0
            for req in queryset.order_by("pk"):
                try:
                    services.issuance_request_reject(
                        actor=request.user, request_id=req.pk, reason=reason
                    )
                    done += 1
                except DomainError as exc:
                    self.message_user(request, f"Request #{req.pk}: {exc.detail}", messages.ERROR)
            if done:
                self.message_user(request, f"Rejected {done} request(s).", messages.SUCCESS)

        return _reason_form(
            self, request, queryset, action="reject", title="Reject issuance requests", run=run
        )


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "bundle",
        "volume_wh",
        "from_account",
        "to_account",
        "status",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["=id", "=from_account__number", "=to_account__number"]
    raw_id_fields = ["bundle", "from_account", "to_account", "created_by"]
    show_full_result_count = False


@admin.register(Retirement)
class RetirementAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "account",
        "volume_wh",
        "beneficiary_name",
        "beneficiary_country",
        "purpose",
        "retired_at",
    ]
    list_filter = ["purpose", "beneficiary_country"]
    search_fields = ["=public_id", "beneficiary_name"]
    raw_id_fields = ["account", "retired_by"]


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = ["id", "reason", "volume_wh", "withdrawn_by", "withdrawn_at"]


@admin.register(TransferPolicy)
class TransferPolicyAdmin(ReadOnlyAdmin):
    list_display = ["organisation", "require_acceptance", "updated_at"]


def _pre(text: str) -> str:
    """Signed notes and JSON keep their line breaks and indentation on the change page."""
    return format_html("<pre>{}</pre>", text) if text else "-"


def _json(value) -> str:
    return _pre(json.dumps(value, indent=2, sort_keys=True))


@admin.register(CertificateExport)
class CertificateExportAdmin(ReadOnlyAdmin):
    """Exports are created, delivered and settled by the services. Delivery is federation's:
    federation/admin.py extends this admin with its "Deliver now" action."""

    list_display = [
        "id",
        "public_id",
        "bundle",
        "from_account",
        "destination",
        "destination_account",
        "volume_wh",
        "status",
        "export_seq",
        "delivery_attempts",
        "next_attempt_at",
        "settled_at",
    ]
    list_filter = ["status", "destination"]
    search_fields = ["=public_id", "destination_account"]
    list_select_related = ["bundle", "from_account", "destination"]
    show_full_result_count = False
    fields = [
        "public_id",
        "status",
        "reason",
        "bundle",
        "source",
        "volume_wh",
        "from_account",
        "destination",
        "destination_account",
        "created_by",
        "created_at",
        "export_seq",
        "delivery_attempts",
        "next_attempt_at",
        "last_error",
        "settled_at",
        "destination_reference_json",
        "receipt_note",
    ]
    readonly_fields = fields

    @admin.display(description="destination reference")
    def destination_reference_json(self, export: CertificateExport) -> str:
        return _json(export.destination_reference)

    @admin.display(description="receipt")
    def receipt_note(self, export: CertificateExport) -> str:
        return _pre(export.receipt)


@admin.register(CertificateImport)
class CertificateImportAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "public_id",
        "origin",
        "export_seq",
        "status",
        "reason",
        "account",
        "bundle",
        "created_at",
    ]
    list_filter = ["status", "origin"]
    search_fields = ["=public_id", "origin"]
    list_select_related = ["account", "bundle"]
    show_full_result_count = False
    fields = [
        "public_id",
        "origin",
        "export_seq",
        "export_leaf_hash",
        "status",
        "reason",
        "detail",
        "account",
        "bundle",
        "created_at",
        "export_data_json",
        "provenance_json",
        "checkpoint_note",
        "receipt_note",
    ]
    readonly_fields = fields

    @admin.display(description="export data")
    def export_data_json(self, received: CertificateImport) -> str:
        return _json(received.export_data)

    @admin.display(description="provenance")
    def provenance_json(self, received: CertificateImport) -> str:
        return _json(received.provenance)

    @admin.display(description="checkpoint")
    def checkpoint_note(self, received: CertificateImport) -> str:
        return _pre(received.checkpoint)

    @admin.display(description="receipt")
    def receipt_note(self, received: CertificateImport) -> str:
        return _pre(received.receipt)


@admin.register(ForeignDevice)
class ForeignDeviceAdmin(ReadOnlyAdmin):
    list_display = ["device", "origin", "origin_device_id"]
    list_filter = ["origin"]
    search_fields = ["origin"]
    list_select_related = ["device"]
