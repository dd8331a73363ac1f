"""One body limit (64 KiB) for every body type, on the API and in the Django admin alike."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from api.models import Domain
from django.conf import settings
from django.test import Client
from django.test.client import BOUNDARY, encode_multipart
from dns_backends.memory import MemoryBackend

from tests.conftest import Account

pytestmark = pytest.mark.django_db

NAME = "_acme-challenge.www.example.com"
VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
FIVE_MIB = 5 * 1024 * 1024
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart_with_a_file(fields: dict[str, str], size: int) -> bytes:
    """A multipart body with the given fields and one file part of ``size`` bytes."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return encode_multipart(
        BOUNDARY, {**fields, "attachment": SimpleUploadedFile("a.bin", b"a" * size)}
    )


def bodies(size: int) -> dict[str, tuple[str, bytes]]:
    """A challenge body of about ``size`` bytes in each body type a client could send."""
    fields = {"fqdn": NAME + ".", "value": VALUE}
    padded = {**fields, "padding": "a" * size}
    return {
        "json": ("application/json", json.dumps(padded).encode()),
        "form": ("application/x-www-form-urlencoded", urlencode(padded).encode()),
        "multipart field": (MULTIPART, encode_multipart(BOUNDARY, padded)),
        "multipart file": (MULTIPART, multipart_with_a_file(fields, size)),
    }


@pytest.mark.parametrize("kind", ["json", "form", "multipart field", "multipart file"])
@pytest.mark.parametrize("size", [settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1, FIVE_MIB])
def test_every_body_type_over_the_limit_answers_413_and_publishes_nothing(
    machine: Account, memory_backend: MemoryBackend, kind: str, size: int
) -> None:
    """The multipart file part was accepted at 5 MiB before the upload handler limit."""
    content_type, body = bodies(size)[kind]
    response = machine.client().post("/present", data=body, content_type=content_type)
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large"}
    assert memory_backend.values(NAME) == set()


def test_a_small_multipart_body_with_a_file_part_is_still_accepted(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    body = multipart_with_a_file({"fqdn": NAME + ".", "value": VALUE}, 10)
    response = machine.client().post("/present", data=body, content_type=MULTIPART)
    assert response.status_code == 200
    assert memory_backend.values(NAME) == {VALUE}


def test_admin_api_refuses_a_large_multipart_body_with_413(admin_account: Account) -> None:
    body = multipart_with_a_file({"fqdn": "example.org"}, FIVE_MIB)
    response = admin_account.client().post("/api/v1/domains/", data=body, content_type=MULTIPART)
    assert response.status_code == 413
    assert not Domain.objects.filter(fqdn="example.org").exists()


def test_django_admin_refuses_a_large_multipart_body(admin_account: Account) -> None:
    client = Client()
    client.force_login(admin_account.user)
    body = multipart_with_a_file({"fqdn": "example.org"}, FIVE_MIB)
    response = client.post("/admin/api/domain/add/", data=body, content_type=MULTIPART)
    assert response.status_code in (400, 413)
    assert not Domain.objects.filter(fqdn="example.org").exists()
