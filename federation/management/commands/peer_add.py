"""`manage.py peer_add`: register a peer registry as the issuing body (ops and set-up)."""

import json

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from federation import client, services
from federation.client import Limits, PeerUnreachable
from federation.models import Peer
from registry.errors import DomainError

IDENTITY_PATH = "/.well-known/gridproof/federation"


class Command(BaseCommand):
    help = (
        "Register a peer registry. Give its origin, URL and log key, or --discover URL to "
        "read them from the peer's /.well-known/gridproof/federation (check the key id it "
        "prints with the peer's operator before you rely on it)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--actor", required=True, help="username of an issuing-body member")
        parser.add_argument("--discover", metavar="URL", help="read origin, URL and keys from URL")
        parser.add_argument("--origin")
        parser.add_argument("--url", help="the peer's base URL")
        parser.add_argument("--log-key", help="the peer's checkpoint verifier key")
        parser.add_argument("--witness-key", default="", help="its cosignature/v1 key")
        parser.add_argument("--witness-url", default="", help="its tlog-witness prefix")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--roles", default="", help="comma-separated: " + ", ".join(Peer.Role.values)
        )

    def _discover(self, url: str) -> dict:
        try:
            response = client.get(client.join(url, IDENTITY_PATH), limits=Limits(5.0, 65536))
        except PeerUnreachable as exc:
            raise CommandError(str(exc)) from None
        if response.status != 200:
            raise CommandError(f"{url}{IDENTITY_PATH}: HTTP {response.status}")
        try:
            return json.loads(response.body)
        except ValueError:
            raise CommandError(f"{url}{IDENTITY_PATH}: not JSON") from None

    def handle(self, *args, **o) -> None:
        actor = User.objects.filter(username=o["actor"]).first()
        if actor is None:
            raise CommandError(f"no user {o['actor']!r}")
        fields = {
            "origin": o["origin"],
            "base_url": o["url"],
            "log_vkey": o["log_key"],
            "witness_vkey": o["witness_key"],
            "witness_url": o["witness_url"],
        }
        if o["discover"]:
            found = self._discover(o["discover"])
            fields = {
                "origin": fields["origin"] or found.get("origin", ""),
                "base_url": fields["base_url"] or found.get("base_url", ""),
                "log_vkey": fields["log_vkey"] or found.get("log_vkey", ""),
                "witness_vkey": fields["witness_vkey"] or found.get("witness_vkey", ""),
                "witness_url": fields["witness_url"] or found.get("witness_url", ""),
            }
        missing = [k for k in ("origin", "base_url", "log_vkey") if not fields[k]]
        if missing:
            raise CommandError(f"missing: {', '.join(missing)} (or use --discover URL)")
        roles = [role.strip() for role in o["roles"].split(",") if role.strip()]
        try:
            peer = services.peer_register(actor=actor, roles=roles, name=o["name"], **fields)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        self.stdout.write(
            f"registered peer #{peer.pk} {peer.origin} ({', '.join(peer.roles) or 'no roles'})\n"
            f"  log key     {peer.log_vkey}\n  witness key {peer.witness_vkey}"
        )
