"""registry.hooks: named lists that higher apps fill from AppConfig.ready()."""

import pytest

from registry.hooks import HOOKS, Hook, HookNotRegistered


@pytest.fixture(autouse=True)
def no_test_hooks_left():
    before = dict(HOOKS)
    yield
    HOOKS.clear()
    HOOKS.update(before)


def test_registering_twice_keeps_one_entry_and_returns_the_callable():
    # given
    hook = Hook("test.registered_twice")

    def guard(account) -> None:
        pass

    # when
    returned = [hook.register(guard), hook.register(guard)]

    # then
    assert returned == [guard, guard]
    assert list(hook) == [guard]
    assert HOOKS["test.registered_twice"] is hook


def test_one_needs_exactly_one_registration():
    # given
    hook = Hook("test.single")

    # then
    with pytest.raises(HookNotRegistered, match=r"test\.single: 0 registrations"):
        hook.one()
    hook.register(print)
    assert hook.one() is print
    hook.register(repr)
    with pytest.raises(HookNotRegistered, match="2 registrations"):
        hook.one()


def test_the_apps_register_their_hooks_on_startup():
    # given: django.setup() ran every AppConfig.ready()
    from certificates.crossregistry import EXPORT_DESTINATION_LOOKUPS
    from federation.selectors import peer_partner_find
    from federation.triggers import FEDERATION_TABLES
    from ledger.kick import INTEGRATOR_TASK
    from ledger.tasks import ledger_integrate_task
    from ledger.triggers import INDEX_TABLES, LEDGER_TABLES
    from market.triggers import MARKET_TABLES
    from registry.append_only import APPEND_ONLY_TABLES

    # then
    assert list(APPEND_ONLY_TABLES) == [
        LEDGER_TABLES,
        INDEX_TABLES,
        FEDERATION_TABLES,
        MARKET_TABLES,
    ]
    assert INTEGRATOR_TASK.one() is ledger_integrate_task
    assert EXPORT_DESTINATION_LOOKUPS.one() is peer_partner_find
