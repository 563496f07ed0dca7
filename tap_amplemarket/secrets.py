"""Every secret the run knows, and `redacted`, which all the text the run prints passes through.

A secret is hidden wherever any PIECE characters of it show, in any case and URL-encoded,
not only whole: a server may echo part of the key, upper-case it, or encode it, and a line
cut short may hold only its start.
"""

from __future__ import annotations

import json
import logging
import re
import typing as t
import urllib.request
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from typing_extensions import override

#: Shorter values are no real secret (the tests' "k"): hiding them would garble every line.
MIN_SECRET_LENGTH = 6
#: Any this many consecutive characters of a secret are hidden.
PIECE = 5
#: What stands for hidden text.
MASK = "***"

#: Every secret this process was given (see `remember`), and their pieces, case-folded.
_SECRETS: set[str] = set()
_PIECES: set[str] = set()
#: The userinfo of a URL (`//user:password@`): hidden whatever its length.
_USERINFO = re.compile(r"(?<=//)[^/?#\s@]+@")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _forms(secret: str) -> set[str]:
    """A secret as it may be written: itself, URL-encoded, escaped as repr and JSON do."""
    escaped = (repr(secret)[1:-1], json.dumps(secret)[1:-1])
    return {secret, quote(secret, safe=""), quote_plus(secret), *escaped}


def _hidden_spans(text: str) -> list[bool]:
    """For each character of `text`, whether it belongs to a piece of a secret."""
    hidden = [False] * len(text)
    folded = text.casefold() if len(text.casefold()) == len(text) else None
    for start in range(len(text) - PIECE + 1):
        window = (
            folded[start : start + PIECE]
            if folded is not None
            else text[start : start + PIECE].casefold()
        )
        if window in _PIECES:
            hidden[start : start + PIECE] = [True] * PIECE
    return hidden


def _without_secrets(text: str) -> str:
    if _PIECES and len(text) >= PIECE:
        hidden = _hidden_spans(text)
        if any(hidden):
            shown, after_hidden = [], False
            for char, is_hidden in zip(text, hidden, strict=True):
                if not is_hidden:
                    shown.append(char)
                elif not after_hidden:
                    shown.append(MASK)
                after_hidden = is_hidden
            text = "".join(shown)
    return _USERINFO.sub(MASK + "@", text)


def redacted(text: str, limit: int | None = None, *, one_line: bool = True) -> str:
    """`text` as it may be printed: secrets hidden, and cut to `limit` characters.

    Every piece of every secret, and any URL's userinfo, replaced by ***; with `one_line`,
    control characters (line breaks above all) escaped, so that text the API sent cannot pass
    for a line of the tap's own; cut to `limit` characters last, so that a secret is never
    cut in two and half shown.
    """
    text = str(text)
    if one_line:  # first: an escape ("\\n") must not join what follows into a secret's piece
        text = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)
    text = _without_secrets(text)
    return text if limit is None else text[:limit]


def redacted_strings(value: t.Any) -> t.Any:
    """`value` (JSON: dicts, lists, text) with every text in it `redacted`."""
    if isinstance(value, str):
        return redacted(value, one_line=False)
    if isinstance(value, list):
        return [redacted_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: redacted_strings(item) for key, item in value.items()}
    return value


def add(secret: str) -> None:
    """Hide `secret` from every line and message from here on."""
    if len(secret) < MIN_SECRET_LENGTH:
        return
    _SECRETS.add(secret)
    for form in _forms(secret):
        folded = form.casefold()
        _PIECES.update(folded[i : i + PIECE] for i in range(len(folded) - PIECE + 1))


def forget_all() -> None:
    """Forget every secret: a process that runs more than one tap (tests) starts clean."""
    _SECRETS.clear()
    _PIECES.clear()


def url_secrets(url: str) -> set[str]:
    """What a URL carries that must not be shown: its userinfo and its query's values.

    The user alone too, when it has no password (a token); each as written and decoded.
    """
    try:
        parts = urlsplit(url)
        found = {value for _, value in parse_qsl(parts.query)}
        userinfo, _, _ = parts.netloc.rpartition("@")
        if userinfo:
            user, colon, password = userinfo.partition(":")
            found |= {userinfo, password} if colon else {user}
    except ValueError:
        return set()
    return found | {unquote(secret) for secret in found}


def proxy_urls() -> list[str]:
    """The proxies the environment names (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY...)."""
    return list(urllib.request.getproxies_environment().values())


class SecretFilter(logging.Filter):
    """Passes every log line, tracebacks included, through `redacted`.

    Whatever put a secret there (e.g. an error body that echoes the request's Authorization
    header).
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (clean := redacted(message, one_line=False)) != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redacted(record.exc_text, one_line=False)
        return True


SECRET_FILTER = SecretFilter()


def remember(config: t.Mapping[str, t.Any]) -> None:
    """Hide the key, api_url's secrets and the proxies' credentials from every line.

    Hidden: the key, what api_url carries in its userinfo or query, and the credentials of
    the environment's proxies. Installs the filter on every handler of the root logger (where
    the SDK logs).
    """
    secrets = set()
    if (key := config.get("api_key")) is not None:  # of any type: a wrong one is quoted
        secrets.add(str(key))
    if isinstance(api_url := config.get("api_url"), str):
        secrets |= url_secrets(api_url)
    for proxy in proxy_urls():
        secrets |= url_secrets(proxy)
    for secret in secrets:
        add(secret)
    for handler in logging.getLogger().handlers:
        if SECRET_FILTER not in handler.filters:
            handler.addFilter(SECRET_FILTER)
