"""Interim (1xx) responses skipped, as HTTP says (RFC 9110, 15.2).

A client must read past any number of them to the final response. http.client skips only
100 Continue, and took a 103 Early Hints for the answer (an empty one), leaving the real
answer unread.
"""

from __future__ import annotations

import http.client
from http import HTTPStatus


class FinalResponse(http.client.HTTPResponse):
    """An HTTPResponse that reads past interim responses 102-199 to the final one.

    101 means a protocol switch, never asked for here, so it stays the answer; 100 is skipped
    by http.client itself.
    """

    # The status line is the one place to skip them: begin() loops only over 100s.
    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]  # no stub
            if not HTTPStatus.SWITCHING_PROTOCOLS < status < HTTPStatus.OK:
                return version, status, reason
            http.client.parse_headers(self.fp)  # the interim response's fields, dropped
