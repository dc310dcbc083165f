"""factory_boy factories for the whole suite. Rows made here skip services on purpose:
they set up state; the services under test are called explicitly."""

import factory
from factory.django import DjangoModelFactory

from accounts.models import Account, Membership, Organisation, User


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("correct-horse-battery")


class OrganisationFactory(DjangoModelFactory):
    class Meta:
        model = Organisation

    legal_name = factory.Sequence(lambda n: f"Organisation {n} Ltd")
    country = "DE"
    registration_id = factory.Sequence(lambda n: f"REG-{n:06d}")
    is_producer = True
    is_trader = True
    status = Organisation.Status.APPROVED


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = Membership.Role.ADMIN


class AccountFactory(DjangoModelFactory):
    class Meta:
        model = Account

    organisation = factory.SubFactory(OrganisationFactory)
    number = factory.Sequence(lambda n: f"GP-TEST-{n:06d}")
    name = factory.Sequence(lambda n: f"Account {n}")
    kind = Account.Kind.TRADING


def member_of(organisation: Organisation, role: str = Membership.Role.ADMIN, **kwargs) -> User:
    """A new user holding `role` in `organisation`."""
    return MembershipFactory(organisation=organisation, role=role, **kwargs).user


def issuing_body_user(**kwargs) -> User:
    organisation = OrganisationFactory(
        legal_name="Issuing Body", is_issuing_body=True, is_producer=False, is_trader=False
    )
    return member_of(organisation, **kwargs)


def auditor_user(**kwargs) -> User:
    organisation = OrganisationFactory(
        legal_name="Auditor", is_auditor=True, is_producer=False, is_trader=False
    )
    return member_of(organisation, role=Membership.Role.VIEWER, **kwargs)
