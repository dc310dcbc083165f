"""Read-only admin for the log, with the queue length, the latest checkpoint and a button
that signs a checkpoint now (through the service)."""

import json

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.functional import cached_property

from ledger import selectors, services
from ledger.models import Checkpoint, LedgerEntry, PendingEvent, TreeHead, TreeNode
from registry.admin import ReadOnlyAdmin
from registry.errors import DomainError


def _hex(value) -> str:
    return bytes(value).hex() if value is not None else ""


def _status() -> dict:
    latest = Checkpoint.objects.order_by("-size").first()
    return {
        "ledger_tree_size": selectors.ledger_tree_size(),
        "ledger_queue_length": selectors.ledger_queue_length(),
        "ledger_latest_checkpoint": latest,
    }


class _EntryPaginator(Paginator):
    """Counts from the tree head instead of COUNT(*) over millions of rows (unfiltered lists)."""

    rows_per_size = staticmethod(lambda size: size)

    @cached_property
    def count(self) -> int:
        if self.object_list.query.where:
            return super().count
        return self.rows_per_size(selectors.ledger_tree_size())


class _NodePaginator(_EntryPaginator):
    # A tree of n leaves holds 2n - popcount(n) complete subtrees.
    rows_per_size = staticmethod(lambda size: 2 * size - size.bit_count())


@admin.register(PendingEvent)
class PendingEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "actor", "subjects", "created_at"]
    list_filter = ["kind"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "kind", "actor", "event_at", "integrated_at"]
    search_fields = ["=seq"]
    paginator = _EntryPaginator
    show_full_result_count = False
    change_list_template = "admin/ledger/ledgerentry/change_list.html"
    fields = [
        "seq",
        "kind",
        "actor",
        "event_at",
        "integrated_at",
        "pending_id",
        "event_json",
        "leaf_hash_hex",
        "chain_hex",
    ]
    readonly_fields = fields

    @admin.display(description="event")
    def event_json(self, entry: LedgerEntry) -> str:
        return json.dumps(json.loads(bytes(entry.event)), indent=2, sort_keys=True)

    @admin.display(description="leaf hash")
    def leaf_hash_hex(self, entry: LedgerEntry) -> str:
        return _hex(entry.leaf_hash)

    @admin.display(description="chain")
    def chain_hex(self, entry: LedgerEntry) -> str:
        return _hex(entry.chain)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**_status(), **(extra_context or {})})


@admin.register(TreeNode)
class TreeNodeAdmin(ReadOnlyAdmin):
    list_display = ["id", "level", "index", "hash_hex"]
    paginator = _NodePaginator
    show_full_result_count = False
    fields = ["id", "level", "index", "hash_hex"]
    readonly_fields = fields

    @admin.display(description="hash")
    def hash_hex(self, node: TreeNode) -> str:
        return _hex(node.hash)


@admin.register(TreeHead)
class TreeHeadAdmin(ReadOnlyAdmin):
    list_display = ["size", "root_hex", "queue_length", "latest_checkpoint", "updated_at"]
    fields = ["size", "root_hex", "chain_hex", "updated_at", "queue_length", "latest_checkpoint"]
    readonly_fields = fields

    @admin.display(description="root")
    def root_hex(self, head: TreeHead) -> str:
        return _hex(head.root)

    @admin.display(description="chain head")
    def chain_hex(self, head: TreeHead) -> str:
        return _hex(head.chain)

    @admin.display(description="events waiting")
    def queue_length(self, head: TreeHead) -> int:
        return selectors.ledger_queue_length()

    @admin.display(description="latest checkpoint")
    def latest_checkpoint(self, head: TreeHead) -> str:
        latest = Checkpoint.objects.order_by("-size").first()
        return f"size {latest.size} at {latest.created_at:%Y-%m-%d %H:%M:%S}" if latest else "none"


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["size", "origin", "root_hex", "key_id", "created_at"]
    fields = ["size", "origin", "root_hex", "key_id", "created_at", "note"]
    readonly_fields = fields
    change_list_template = "admin/ledger/checkpoint/change_list.html"

    @admin.display(description="root")
    def root_hex(self, checkpoint: Checkpoint) -> str:
        return _hex(checkpoint.root)

    def get_urls(self):
        create = self.admin_site.admin_view(self.create_checkpoint_view)
        return [
            path("create/", create, name="ledger_checkpoint_create"),
            *super().get_urls(),
        ]

    def create_checkpoint_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        try:
            checkpoint, created = services.checkpoint_create()
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
        else:
            if created:
                self.message_user(
                    request, f"Signed a checkpoint at size {checkpoint.size}.", messages.SUCCESS
                )
            else:
                self.message_user(
                    request,
                    f"The ledger has not grown since the checkpoint at size {checkpoint.size}.",
                    messages.INFO,
                )
        return HttpResponseRedirect(reverse("admin:ledger_checkpoint_changelist"))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**_status(), **(extra_context or {})})
