"""Admin for the issuing body: device approvals and held-batch reviews run the services."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from accounts.permissions import user_is_issuing_body
from assets import services
from assets.models import (
    Device,
    DeviceOwner,
    GridArea,
    Meter,
    MeterKey,
    PendingReading,
    Reading,
    ReadingBatch,
)
from registry.admin import ReadOnlyAdmin
from registry.errors import DomainError


def _reason_action(
    modeladmin, request, queryset, *, title: str, run, reason_required: bool, action: str
):
    """An action that asks for a reason on an intermediate page, then runs `run` per row."""
    if request.POST.get("apply"):
        reason = request.POST.get("reason", "").strip()
        done = 0
        for obj in queryset:
            try:
                run(request.user, obj, reason)
                done += 1
            except DomainError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.detail}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "queryset": queryset,
        "action": action,
        "reason_required": reason_required,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/assets/action_reason.html", context)


class GridAreaForm(forms.ModelForm):
    class Meta:
        model = GridArea
        fields = [
            "code",
            "name",
            "country",
            "time_zone",
            "emission_factor_g_per_kwh",
            "expiry_months",
        ]

    def clean(self):
        data = super().clean()
        values = {name: data[name] for name in self.Meta.fields if name in data}
        if self.instance.pk:
            values.pop("code", None)
        for name, problems in services.grid_area_problems(values).items():
            for problem in problems:
                self.add_error(name, problem)
        return data


@admin.register(GridArea)
class GridAreaAdmin(admin.ModelAdmin):
    """Grid areas; adding and editing run grid_area_create / grid_area_update."""

    form = GridAreaForm
    list_display = [
        "code",
        "name",
        "country",
        "time_zone",
        "emission_factor_g_per_kwh",
        "expiry_months",
    ]
    list_filter = ["country"]
    search_fields = ["code", "name"]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []

    def has_add_permission(self, request) -> bool:
        return user_is_issuing_body(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return user_is_issuing_body(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if change:
            changes = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in services.GRID_AREA_EDITABLE
            }
            services.grid_area_update(actor=request.user, grid_area_id=obj.pk, **changes)
        else:
            created = services.grid_area_create(
                actor=request.user,
                **{name: form.cleaned_data[name] for name in GridAreaForm.Meta.fields},
            )
            obj.pk = created.pk


class DeviceOwnerInline(admin.TabularInline):
    model = DeviceOwner
    extra = 0
    can_delete = False
    fields = ["organisation", "account", "share_numerator", "share_denominator"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class MeterInline(admin.TabularInline):
    model = Meter
    extra = 0
    can_delete = False
    fields = ["serial", "kind", "status", "installed_at", "removed_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _device_action(name: str, title: str):
    transition = services.DEVICE_TRANSITIONS[name]

    def run(user, device, reason):
        services.device_transition(actor=user, device_id=device.pk, action=name, reason=reason)

    def action(modeladmin, request, queryset):
        return _reason_action(
            modeladmin,
            request,
            queryset,
            title=title,
            run=run,
            reason_required=transition.reason_required,
            action=name,
        )

    action.__name__ = name
    return admin.action(description=f"{title} selected devices")(action)


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdmin):
    """Devices; the issuing body approves, rejects, suspends and reinstates them here."""

    list_display = [
        "name",
        "organisation",
        "grid_area",
        "technology_code",
        "capacity_w",
        "status",
        "created_at",
    ]
    list_filter = ["status", "grid_area", "technology_code", "support", "is_storage"]
    search_fields = ["name", "organisation__legal_name"]
    list_select_related = ["organisation", "grid_area"]
    inlines = [DeviceOwnerInline, MeterInline]
    actions = [
        _device_action("approve", "Approve"),
        _device_action("reject", "Reject"),
        _device_action("activate", "Activate"),
        _device_action("suspend", "Suspend"),
        _device_action("reinstate", "Reinstate"),
        _device_action("decommission", "Decommission"),
    ]


class MeterKeyInline(admin.TabularInline):
    model = MeterKey
    extra = 0
    can_delete = False
    fields = ["public_key", "valid_from", "valid_to"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Meter)
class MeterAdmin(ReadOnlyAdmin):
    list_display = ["serial", "kind", "device", "status", "installed_at", "removed_at"]
    list_filter = ["kind", "status"]
    search_fields = ["serial", "device__name"]
    list_select_related = ["device"]
    inlines = [MeterKeyInline]


def _batch_action(name: str, title: str, *, reason_required: bool):
    service = services.reading_batch_accept if name == "accept" else services.reading_batch_reject

    def run(user, batch, reason):
        service(actor=user, batch_id=batch.pk, reason=reason)

    def action(modeladmin, request, queryset):
        return _reason_action(
            modeladmin,
            request,
            queryset,
            title=title,
            run=run,
            reason_required=reason_required,
            action=name,
        )

    action.__name__ = name
    return admin.action(description=f"{title} selected held batches")(action)


@admin.register(ReadingBatch)
class ReadingBatchAdmin(ReadOnlyAdmin):
    """Reading batches; held ones are reviewed here (accept or reject, with a reason)."""

    list_display = [
        "id",
        "organisation",
        "device",
        "status",
        "size",
        "total_wh",
        "first_start",
        "last_end",
        "review_summary",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["=id", "device__name", "organisation__legal_name"]
    list_select_related = ["organisation", "device"]
    readonly_fields = ["flagged_rows"]
    actions = [
        _batch_action("accept", "Accept", reason_required=False),
        _batch_action("reject", "Reject", reason_required=True),
    ]

    @admin.display(description="Review reasons")
    def review_summary(self, batch: ReadingBatch) -> str:
        return ", ".join(f"{item['code']} ({item['rows']})" for item in batch.review_reasons)

    @admin.display(description="Flagged rows (first 50)")
    def flagged_rows(self, batch: ReadingBatch) -> str:
        rows = (
            PendingReading.objects.filter(batch=batch)
            .exclude(flags="")
            .select_related("meter")
            .order_by("index_in_batch")[:50]
        )
        if not rows:
            return "-"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r.index_in_batch, r.meter.serial, r.start, r.wh, r.flags) for r in rows),
        )
        return format_html(
            "<table><tr><th>index</th><th>meter</th><th>start</th><th>Wh</th><th>flags</th>"
            "</tr>{}</table>",
            body,
        )


@admin.register(Reading)
class ReadingAdmin(ReadOnlyAdmin):
    list_display = ["id", "meter", "start", "end", "wh", "is_signed", "batch", "issued_at"]
    list_filter = ["is_signed"]
    search_fields = ["meter__serial"]
    list_select_related = ["meter"]
    show_full_result_count = False
