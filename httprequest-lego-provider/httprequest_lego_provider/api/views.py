"""HTTP views of the httpreq protocol: parse the input, call :mod:`api.records`, render.

Success is 200 with the record as JSON: lego and cert-manager accept any 2xx, and acme.sh's
acmeproxy hook counts a call successful only when the body contains the TXT value.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.challenges import parse_challenge
from api.records import record_cleanup, record_present


class PresentView(APIView):
    """``POST /present``: publish a TXT value beside any others at that name."""

    def post(self, request: Request) -> Response:
        """Publish, then echo the record."""
        challenge = parse_challenge(request.data)
        record_present(user=request.user, challenge=challenge)
        return Response(challenge.as_response())


class CleanupView(APIView):
    """``POST /cleanup``: withdraw exactly that TXT value."""

    def post(self, request: Request) -> Response:
        """Withdraw, then echo the record."""
        challenge = parse_challenge(request.data)
        record_cleanup(user=request.user, challenge=challenge)
        return Response(challenge.as_response())
