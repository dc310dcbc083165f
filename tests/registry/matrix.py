"""The permission matrix: (role x endpoint x method) -> expected HTTP status.

Every app lists its endpoints in `tests/<app>/permission_cases.py`:

    from tests.registry.matrix import Case, expect

    def setup_world(world):          # optional: the objects your cases point at
        world.device = DeviceFactory(organisation=world.orgs["producer"])

    CASES = [
        Case("GET", "/api/v1/devices/{pk}/", expect(404, anonymous=401, producer_admin=200, ...),
             args=lambda w: {"pk": w.device.pk}),
    ]

tests/registry/test_permission_matrix.py finds those modules, builds one world per
test (every role below, plus what each `setup_world` adds), and runs every case for
every role. It also fails when an endpoint under /api/v1/ has no case, and when a
case lets an auditor write.
"""

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from accounts.models import Membership, Organisation, User
from tests.factories import OrganisationFactory, UserFactory, member_of

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password

ROLES = (
    "anonymous",  # no credentials
    "no_org",  # logged in, member of no organisation
    "producer_admin",  # admin / operator / viewer of an approved producer
    "producer_operator",
    "producer_viewer",
    "pending_member",  # admin of an organisation still pending approval
    "suspended_member",  # admin of a suspended organisation
    "other_admin",  # admin of another approved organisation (a trader)
    "issuing_body",  # admin of the approved issuing body
    "auditor",  # member (viewer) of an approved auditor
)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def expect(default: int, **statuses: int) -> dict[str, int]:
    """A full role -> status row: `default` for every role not named."""
    unknown = set(statuses) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; roles are {ROLES}")
    return {role: statuses.get(role, default) for role in ROLES}


@dataclass(frozen=True)
class Case:
    """One endpoint and method, the object it targets, and the status each role gets."""

    method: str
    route: str  # as in the URL conf, with {placeholders}: "/api/v1/accounts/{pk}/"
    expected: Mapping[str, int]
    name: str = ""  # tells apart two cases of one route and method (different targets)
    args: Callable[[SimpleNamespace], dict[str, Any]] = lambda world: {}
    # The JSON body; gets the world and the role, so a case can say "your own organisation".
    body: Callable[[SimpleNamespace, str], Any] | None = None
    codes: Mapping[str, str] = field(default_factory=dict)  # role -> expected error code
    events: int = 1  # ledger events one successful write queues
    auditor_exempt: str = ""  # why an auditor may write here (their own login, say)

    @property
    def id(self) -> str:
        return f"{self.method} {self.route}" + (f" [{self.name}]" if self.name else "")


def case_modules() -> list[ModuleType]:
    """Every tests/<app>/permission_cases.py, in app order."""
    tests_dir = Path(__file__).resolve().parents[1]
    return [
        importlib.import_module(f"tests.{path.parent.name}.permission_cases")
        for path in sorted(tests_dir.glob("*/permission_cases.py"))
    ]


def all_cases() -> list[Case]:
    return [case for module in case_modules() for case in module.CASES]


def build_world() -> SimpleNamespace:
    """One user per role and the organisations they belong to, then each app's objects."""
    orgs = {
        "producer": OrganisationFactory(legal_name="Producer", is_producer=True, is_trader=True),
        "pending": OrganisationFactory(legal_name="Pending", status=Organisation.Status.PENDING),
        "suspended": OrganisationFactory(
            legal_name="Suspended", status=Organisation.Status.SUSPENDED
        ),
        "other": OrganisationFactory(legal_name="Other", is_producer=False, is_trader=True),
        "issuing_body": OrganisationFactory(
            legal_name="Issuing Body", is_issuing_body=True, is_producer=False, is_trader=False
        ),
        "auditor": OrganisationFactory(
            legal_name="Auditor", is_auditor=True, is_producer=False, is_trader=False
        ),
    }
    role = Membership.Role
    users: dict[str, User | None] = {
        "anonymous": None,
        "no_org": UserFactory(username="no_org"),
        "producer_admin": member_of(orgs["producer"], role.ADMIN, user__username="p_admin"),
        "producer_operator": member_of(orgs["producer"], role.OPERATOR, user__username="p_op"),
        "producer_viewer": member_of(orgs["producer"], role.VIEWER, user__username="p_viewer"),
        "pending_member": member_of(orgs["pending"], role.ADMIN, user__username="pending"),
        "suspended_member": member_of(orgs["suspended"], role.ADMIN, user__username="suspended"),
        "other_admin": member_of(orgs["other"], role.ADMIN, user__username="other"),
        "issuing_body": member_of(orgs["issuing_body"], role.ADMIN, user__username="ib"),
        "auditor": member_of(orgs["auditor"], role.VIEWER, user__username="auditor"),
    }
    # The organisation each role acts for ("your own organisation" cases).
    own_org = {
        "anonymous": orgs["producer"],
        "no_org": orgs["producer"],
        "producer_admin": orgs["producer"],
        "producer_operator": orgs["producer"],
        "producer_viewer": orgs["producer"],
        "pending_member": orgs["pending"],
        "suspended_member": orgs["suspended"],
        "other_admin": orgs["other"],
        "issuing_body": orgs["issuing_body"],
        "auditor": orgs["auditor"],
    }
    world = SimpleNamespace(orgs=orgs, users=users, own_org=own_org, password=PASSWORD)
    for module in case_modules():
        setup = getattr(module, "setup_world", None)
        if setup is not None:
            before = dict(vars(world))
            setup(world)
            replaced = [name for name, value in before.items() if vars(world)[name] is not value]
            assert not replaced, f"{module.__name__} replaces world.{replaced}: use its own names"
    return world
