"""Admin for federation. Peers are registered and changed through the services; the rest
is read-only (signed data, evidence and job state). Certificate exports get their "Deliver
now" action here: delivery is federation's."""

from django import forms
from django.contrib import admin, messages

from accounts.permissions import user_is_issuing_body
from certificates import admin as certificates_admin
from certificates.models import CertificateExport, CertificateImport
from federation import selectors, services, transfers
from federation.models import (
    Anchor,
    Cosignature,
    Evidence,
    MirrorCheckpoint,
    MirrorHead,
    Peer,
    WitnessedCheckpoint,
    WitnessProgress,
)
from registry.admin import ReadOnlyAdmin
from registry.errors import DomainError

EDITABLE = ["origin", "name", "base_url", "witness_url", "log_vkey", "witness_vkey"]


class PeerAdminForm(forms.ModelForm):
    roles = forms.MultipleChoiceField(
        choices=Peer.Role.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    base_url = forms.URLField(max_length=500, assume_scheme="https")
    witness_url = forms.URLField(max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = Peer
        fields = EDITABLE

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["origin"].disabled = True
            self.fields["roles"].initial = self.instance.roles
        self.fields["witness_vkey"].required = False

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            services.peer_validate(
                origin=data["origin"],
                base_url=data["base_url"],
                log_vkey=data["log_vkey"],
                roles=data.get("roles", []),
                witness_vkey=data.get("witness_vkey") or "",
                witness_url=data.get("witness_url") or "",
                peer_id=self.instance.pk,
            )
        except DomainError as exc:
            raise forms.ValidationError(exc.detail) from None
        return data


def _run(modeladmin, request, queryset, service, verb: str, reason: str) -> None:
    done = 0
    for peer in queryset:
        try:
            service(actor=request.user, peer_id=peer.pk, reason=reason)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{peer}: {exc.detail}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb} {done} peer(s).", messages.SUCCESS)


@admin.register(Peer)
class PeerAdmin(admin.ModelAdmin):
    """Add and change call peer_register / peer_update; status changes are actions."""

    form = PeerAdminForm
    list_display = ["origin", "name", "roles", "status", "base_url", "updated_at"]
    list_filter = ["status", "is_witness", "is_mirror", "is_partner"]
    search_fields = ["origin", "name", "base_url"]
    readonly_fields = ["status", "status_reason", "created_at", "updated_at", "federation_state"]
    actions = ["suspend", "reinstate"]

    def has_add_permission(self, request) -> bool:
        return user_is_issuing_body(request.user)

    def changelist_view(self, request, extra_context=None):
        context = {"federation": selectors.federation_status(), **(extra_context or {})}
        return super().changelist_view(request, context)

    def has_change_permission(self, request, obj=None) -> bool:
        return user_is_issuing_body(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = {field: form.cleaned_data.get(field) or "" for field in EDITABLE}
        data["roles"] = form.cleaned_data.get("roles", [])
        if change:
            data.pop("origin")
            peer = services.peer_update(actor=request.user, peer_id=obj.pk, **data)
        else:
            peer = services.peer_register(actor=request.user, **data)
        obj.pk = peer.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change) -> None:
        """Nothing related is edited here."""

    @admin.display(description="Federation state")
    def federation_state(self, obj: Peer) -> str:
        if obj.pk is None:
            return "-"
        status = next((p for p in selectors.peer_status_list() if p.peer.pk == obj.pk), None)
        if status is None:
            return "-"
        return (
            f"mirror {status.mirror_size} entries (lag {status.lag_entries} entries, "
            f"{status.lag_seconds:.0f} s); witness holds our size {status.witness_size}; "
            f"we cosigned its size {status.witnessed_size or '-'}; "
            f"evidence {status.evidence_count}; last errors: "
            f"{status.mirror_last_error or '-'} / {status.witness_last_error or '-'}; "
            f"exports {status.exports_imported} imported, {status.exports_pending} pending "
            f"({status.export_last_error or 'no error'}), {status.exports_returned} returned; "
            f"imports received {status.imports_received}"
        )

    @admin.action(description="Suspend selected peers")
    def suspend(self, request, queryset) -> None:
        _run(
            self, request, queryset, services.peer_suspend, "Suspended", "Suspended from the admin."
        )

    @admin.action(description="Reinstate selected peers (lift suspension or flag)")
    def reinstate(self, request, queryset) -> None:
        _run(
            self,
            request,
            queryset,
            services.peer_reinstate,
            "Reinstated",
            "Reinstated from the admin.",
        )


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ["id", "peer", "kind", "size", "recorded_at"]
    list_filter = ["kind"]
    search_fields = ["peer__origin", "digest", "detail"]
    exclude = ["payload"]


@admin.register(WitnessedCheckpoint)
class WitnessedCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["peer", "size", "cosigned_at"]
    search_fields = ["peer__origin"]


class CosignatureInline(admin.TabularInline):
    model = Cosignature
    extra = 0
    can_delete = False
    readonly_fields = ["witness", "line", "timestamp", "received_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Anchor)
class AnchorAdmin(ReadOnlyAdmin):
    list_display = ["size", "checkpoint_created_at", "anchored_at", "cosignature_count"]
    inlines = [CosignatureInline]

    @admin.display(description="Cosignatures")
    def cosignature_count(self, obj: Anchor) -> int:
        return obj.cosignatures.count()


@admin.register(WitnessProgress)
class WitnessProgressAdmin(ReadOnlyAdmin):
    list_display = ["peer", "size", "attempts", "next_attempt_at", "last_success_at", "last_error"]


@admin.register(MirrorHead)
class MirrorHeadAdmin(ReadOnlyAdmin):
    list_display = [
        "peer",
        "size",
        "seen_size",
        "attempts",
        "next_attempt_at",
        "last_success_at",
        "last_error",
    ]
    exclude = ["frontier", "root"]


@admin.register(MirrorCheckpoint)
class MirrorCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["peer", "size", "verified_at"]
    search_fields = ["peer__origin"]


# Outcomes of transfers.export_deliver and the message level each is shown at.
_DELIVERY_LEVELS = {
    CertificateExport.Status.IMPORTED: messages.SUCCESS,
    CertificateImport.Status.REJECTED: messages.WARNING,  # the units came back
    CertificateExport.Status.RETURNED: messages.WARNING,
    "waiting for an anchored checkpoint": messages.INFO,
}

# Exports are certificates' rows, delivered by federation: the certificates admin shows them,
# and this subclass, registered in its place, adds the delivery action.
admin.site.unregister(CertificateExport)


@admin.register(CertificateExport)
class CertificateExportDeliveryAdmin(certificates_admin.CertificateExportAdmin):
    """The certificates app's export admin plus "Deliver now", which retries a pending export
    without waiting for its back-off."""

    actions = [*certificates_admin.CertificateExportAdmin.actions, "deliver_now"]

    @admin.action(description="Deliver now")
    def deliver_now(self, request, queryset) -> None:
        for export in queryset.select_related("destination").order_by("pk"):
            label = f"Export #{export.pk} to {export.destination.origin}"
            if export.status != CertificateExport.Status.PENDING:
                self.message_user(
                    request, f"{label}: not pending ({export.status})", messages.WARNING
                )
                continue
            try:
                outcome = transfers.export_deliver(export_id=export.pk)
            except DomainError as exc:
                self.message_user(request, f"{label}: {exc.detail}", messages.ERROR)
                continue
            level = _DELIVERY_LEVELS.get(outcome, messages.ERROR)
            line = f"{label}: {outcome}"
            if level == messages.ERROR:
                error = (
                    CertificateExport.objects.filter(pk=export.pk)
                    .values_list("last_error", flat=True)
                    .first()
                )
                if error:
                    line += f" ({error})"
            self.message_user(request, line, level)
