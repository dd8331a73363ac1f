"""Body size limits for every body type: JSON, form-encoded and multipart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from api.errors import BodyTooLargeError


def body_limit() -> int:
    """The one limit on request bodies, whatever their type."""
    limit: int = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return limit


class LimitedJSONParser(JSONParser):
    """Refuse bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` before decoding them."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read at most the limit plus one byte, then decode."""
        limit = body_limit()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLargeError()
        try:
            return json.loads(raw.decode("utf-8"))
        # ValueError covers bad UTF-8, bad JSON and integers too long to convert; RecursionError,
        # a body of deeply nested arrays well within the size limit.
        except (ValueError, RecursionError) as exc:
            raise ParseError("body is not valid JSON") from exc


class BodyLimitUploadHandler(FileUploadHandler):
    """Refuse a multipart body over the limit before any part of it is read.

    Django applies ``DATA_UPLOAD_MAX_MEMORY_SIZE`` to form fields only, never to file parts, so
    a multipart body could carry megabytes past it. This handler runs first for every multipart
    body (DRF's parser and the Django admin alike) and judges the declared length, which is all
    Django will read.
    """

    def handle_raw_input(
        self,
        input_data: IO[bytes],
        META: dict[str, Any],  # noqa: N803 (Django's name)
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        """Raise :class:`RequestDataTooBig` when the body is over the limit."""
        if content_length > body_limit():
            raise RequestDataTooBig("multipart body over DATA_UPLOAD_MAX_MEMORY_SIZE")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        """Pass the data on to the next handler."""
        return raw_data

    def file_complete(self, file_size: int) -> None:
        """Leave the file to the next handler."""
