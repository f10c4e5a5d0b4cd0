"""Standard Webhooks signing against the specification's test vector and an independent
implementation (the `standardwebhooks` library)."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ctrip_cli.webhooks import signing

# The test vector published with the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of 32 bytes, rotated").decode()


def test_signature_matches_the_specification_test_vector():
    key = signing.decode_secret(SPEC_SECRET)
    assert signing.sign([key], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_secret_without_prefix_or_padding_gives_the_same_key():
    key = signing.decode_secret(SPEC_SECRET)
    assert signing.decode_secret(SPEC_SECRET.removeprefix("whsec_")) == key
    padded = "whsec_" + base64.b64encode(b"12345").decode()  # "MTIzNDU=" has padding
    assert signing.decode_secret(padded.rstrip("=")) == b"12345"


def test_bad_secret_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match="not whsec_ followed by base64") as err:
        signing.decode_secret("whsec_not*base64!")
    assert "not*base64" not in str(err.value)


@pytest.mark.parametrize("empty", ["whsec_", "whsec_===="])
def test_empty_secret_is_refused(empty):
    with pytest.raises(ValueError):
        signing.decode_secret(empty)


def test_independent_library_verifies_our_headers():
    body = b'{"type":"payment.confirmed","data":{"amount":"12.5"}}'
    now = int(time.time())
    keys = [signing.decode_secret(SPEC_SECRET)]
    headers = signing.headers(keys, "msg_abc", now, body)
    assert Webhook(SPEC_SECRET).verify(body, headers) == {
        "type": "payment.confirmed",
        "data": {"amount": "12.5"},
    }


def test_rotation_signs_with_every_secret_so_either_verifies():
    body = b"{}"
    now = int(time.time())
    keys = [signing.decode_secret(SPEC_SECRET), signing.decode_secret(OTHER_SECRET)]
    headers = signing.headers(keys, "msg_rot", now, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(SPEC_SECRET).verify(body, headers)
    Webhook(OTHER_SECRET).verify(body, headers)


def test_altered_body_or_id_fails_verification():
    now = int(time.time())
    headers = signing.headers([signing.decode_secret(SPEC_SECRET)], "msg_1", now, b"{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(b'{"x":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(b"{}", headers | {"webhook-id": "msg_2"})


def test_headers_carry_id_and_timestamp_and_sign_only_with_keys():
    assert signing.headers([], "msg_1", 7, b"{}") == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "7",
    }
