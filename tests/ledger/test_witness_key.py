"""The witness key is a key of its own (ledger/keys.py): never the log key, never its name."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from ledger.keys import registry_signer, registry_witness
from ledger.signing import generate_private_key


def test_development_derives_a_witness_key_apart_from_the_log_key(settings):
    # given: development, no keys configured
    settings.REGISTRY_WITNESS_KEY = ""
    # when
    witness, log = registry_witness(), registry_signer()
    # then
    assert witness.name == f"{settings.REGISTRY_ORIGIN}/witness"
    assert witness.cosignature_verifier.public_key != log.verifier.public_key


def test_a_configured_witness_key_is_used(settings):
    private, vkey = generate_private_key("witness.example.org/w1")
    settings.REGISTRY_WITNESS_KEY = private
    assert registry_witness().vkey == vkey


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda origin: generate_private_key(origin)[0], "named like the log"),
        (lambda origin: "PRIVATE+KEY+nonsense", "not a note private key"),
    ],
    ids=["named like the origin", "malformed"],
)
def test_a_witness_key_the_registry_cannot_use_is_refused(settings, make, message):
    settings.REGISTRY_WITNESS_KEY = make(settings.REGISTRY_ORIGIN)
    with pytest.raises(ImproperlyConfigured, match=message):
        registry_witness()


def test_production_without_a_witness_key_is_refused(settings):
    settings.REGISTRY_WITNESS_KEY = ""
    settings.DEVELOPMENT = False
    with pytest.raises(ImproperlyConfigured, match="REGISTRY_WITNESS_KEY is not set"):
        registry_witness()
