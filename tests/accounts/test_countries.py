"""Country codes are checked against ISO 3166-1 (pycountry's list), not by shape alone."""

import pytest

from accounts import services
from accounts.models import Organisation
from registry.countries import country_code_valid
from registry.errors import InvalidInput
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("code", "valid"),
    [("DE", True), ("CH", True), ("ZZ", False), ("de", False), ("DEU", False), (None, False)],
)
def test_country_code_valid(code, valid):
    assert country_code_valid(code) is valid


def test_registering_an_organisation_in_zz_is_a_400_naming_the_field():
    # when
    response = client_for(UserFactory()).post(
        "/api/v1/organisations/",
        {"legal_name": "X GmbH", "country": "ZZ", "registration_id": "HRB-1", "roles": ["trader"]},
        format="json",
    )
    # then
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "country" in response.json()["extra"]["fields"]
    assert Organisation.objects.count() == 0


@pytest.mark.parametrize("service", ["organisation_register", "issuing_body_bootstrap"])
def test_services_refuse_an_unassigned_code(service):
    # given
    user = UserFactory()
    kwargs = {"legal_name": "X GmbH", "country": "ZZ", "registration_id": "HRB-1"}
    if service == "organisation_register":
        kwargs |= {"actor": user, "roles": ["trader"]}
    else:
        kwargs |= {"admin": user}
    # when / then
    with pytest.raises(InvalidInput):
        getattr(services, service)(**kwargs)
    assert Organisation.objects.count() == 0
