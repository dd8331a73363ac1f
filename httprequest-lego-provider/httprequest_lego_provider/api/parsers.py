"""A JSON parser with a size limit (DRF's own reads a JSON body of any size)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from api.errors import BodyTooLargeError


class LimitedJSONParser(JSONParser):
    """Refuse bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` before decoding them."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read at most the limit plus one byte, then decode."""
        limit: int = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLargeError()
        try:
            return json.loads(raw.decode("utf-8"))
        # ValueError covers bad UTF-8, bad JSON and integers too long to convert; RecursionError,
        # a body of deeply nested arrays well within the size limit.
        except (ValueError, RecursionError) as exc:
            raise ParseError("body is not valid JSON") from exc
