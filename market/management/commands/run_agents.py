import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from market.agents import services
from registry.errors import DomainError


class Command(BaseCommand):
    help = (
        "Run every active trading agent once for its market's next open slot (the periodic "
        "task does it too), or one agent for one slot with --agent and --slot."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agent", type=int, help="agent id (with --slot)")
        parser.add_argument("--slot", help="slot start, ISO 8601 with its offset")
        parser.add_argument(
            "--force", action="store_true", help="run agents that decided for the slot already"
        )

    def handle(self, *args, agent: int | None, slot: str | None, force: bool, **options) -> None:
        if (agent is None) != (slot is None):
            raise CommandError("--agent and --slot go together")
        try:
            if agent is not None:
                decided = [
                    services.agent_run_slot(
                        agent_id=agent, slot_start=dt.datetime.fromisoformat(slot)
                    )
                ]
            else:
                decided = services.agents_run_due(force=force)
        except (DomainError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for decision in decided:
            self.stdout.write(
                f"agent {decision.agent_id} slot {decision.slot_start.isoformat()}: "
                f"{decision.action} ({decision.reason}) {decision.explanation}"
            )
        self.stdout.write(f"{len(decided)} agent decision(s).")
