"""What an HTTP answer holds and where a URL leads.

JSON bodies read in their declared charset, whatever their depth, and the origin rules that
keep the key on api_url's origin.
"""

from __future__ import annotations

import codecs
import email.message
import json
import math
import typing as t
from urllib.parse import urljoin, urlsplit, urlunsplit

import msgspec
import requests
import urllib3
from singer_sdk.exceptions import RetriableAPIError

from tap_amplemarket.errors import APIRequestError, ForeignLinkError
from tap_amplemarket.secrets import redacted

_BODY_CACHE_KEY = "_amplemarket_body"


class UnreadableBodyError(ValueError):
    """A body that is not JSON the tap can read; the message says why, in the tap's words."""


class TooDeepError(UnreadableBodyError):
    """JSON nested deeper than Python can read (RecursionError)."""


class UnreadableCharsetError(UnreadableBodyError):
    """A charset the body declares that the tap cannot decode it in."""


def media_type(response: requests.Response) -> str:
    """The response's media type (`text/html`), lowercase; "no Content-Type" if it has none."""
    value = response.headers.get("Content-Type")
    if not value:
        return "no Content-Type"
    return value.split(";", 1)[0].strip().lower()[:80] or "no Content-Type"


def declared_charset(response: requests.Response) -> str | None:
    """The charset the Content-Type declares, if any."""
    header = email.message.Message()
    header["Content-Type"] = response.headers.get("Content-Type") or ""
    charset = header.get_param("charset")
    return charset.strip() if isinstance(charset, str) and charset.strip() else None


def is_html(response: requests.Response) -> bool:
    """Whether the response is a web page (what a login page, a proxy, a gateway sends)."""
    if media_type(response) in {"text/html", "application/xhtml+xml"}:
        return True
    return response.content.lstrip()[:1] == b"<"


def _text(response: requests.Response) -> str | bytes:
    """The body as text in its declared charset, or its bytes if it declares UTF-8 or none.

    UTF-8 is JSON's own encoding, which msgspec reads fastest.
    """
    charset = declared_charset(response)
    if charset is None:
        return response.content
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        msg = f"declares charset {charset[:40]!r}, which the tap cannot decode"
        raise UnreadableCharsetError(msg) from None
    if codec == "utf-8":
        return response.content
    try:
        return response.content.decode(codec)
    except UnicodeDecodeError:
        msg = f"is not valid {codec}, the charset it declares"
        raise UnreadableCharsetError(msg) from None


def decode_json(response: requests.Response) -> t.Any:
    """The response's body as JSON.

    Raises UnreadableBodyError (TooDeepError, UnreadableCharsetError) saying why, never
    quoting the body.
    """
    text = _text(response)
    try:
        try:
            return msgspec.json.decode(text)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            try:
                return lenient_json(text)
            except ValueError:
                raise UnreadableBodyError(f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise TooDeepError("nests JSON deeper than can be read") from None


def json_body(response: requests.Response) -> dict[str, t.Any]:
    """The response's JSON object, decoded once and cached on the response.

    Raises RetriableAPIError for a body cut short or not JSON, so decoding happens inside
    the retry loop (the SDK alone would fail the sync on such a body); APIRequestError for
    one no retry can help (too deep, a charset the tap cannot decode).
    """
    cached = response.__dict__.get(_BODY_CACHE_KEY)
    if cached is not None:
        return t.cast("dict[str, t.Any]", cached)
    where = response.request.path_url.split("?")[0]
    try:
        body = decode_json(response)
    except (TooDeepError, UnreadableCharsetError) as exc:
        msg = f"Response from {where} {exc}: report it to Amplemarket"
        raise APIRequestError(msg) from None
    except UnreadableBodyError as exc:
        raise RetriableAPIError(f"Response from {where} {exc}", response) from None
    if not isinstance(body, dict):
        msg = f"Response from {where} is not a JSON object"
        raise RetriableAPIError(msg, response)
    response.__dict__[_BODY_CACHE_KEY] = body
    return body


def lenient_json(content: str | bytes) -> t.Any:
    """JSON that msgspec refuses but can still be read.

    A lone surrogate escape (text cut in the middle of an emoji) or a byte that is not UTF-8
    becomes U+FFFD; a number beyond a float (1e400), an integer of more digits than Python
    reads, and NaN or Infinity (not JSON, but sent by some encoders) are kept as their text.
    """
    options: dict[str, t.Any] = {
        "parse_float": _finite_or_text,
        "parse_int": _int_or_text,
        "parse_constant": str,
    }
    try:
        value = json.loads(content, **options)
    except UnicodeDecodeError:
        assert isinstance(content, bytes)  # text is never decoded again
        value = json.loads(content.decode("utf-8", "replace"), **options)
    return _valid_text(value)


def _finite_or_text(text: str) -> float | str:
    number = float(text)
    return number if math.isfinite(number) else text


def _int_or_text(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return text


def _valid_text(value: t.Any) -> t.Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_valid_text(item) for item in value]
    if isinstance(value, dict):
        return {_valid_text(key): _valid_text(item) for key, item in value.items()}
    return value


def describe_api_errors(response: requests.Response) -> str:
    """Summarise an Amplemarket `_errors` body as `detail (parameter: x)`.

    Never echoes headers, nor a page: a body that is not `_errors` is named by its media type
    (plain text is quoted, cut short, its secrets hidden).
    """
    try:
        body = decode_json(response)
        errors = (body.get("_errors") or []) if isinstance(body, dict) else []
    except TooDeepError:
        return "a body of JSON nested deeper than can be read"
    except UnreadableBodyError:
        errors = []
    parts = []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        text = str(error.get("detail") or error.get("title") or error.get("code") or "")
        source = error.get("source") or {}
        where = (
            source.get("parameter") or source.get("pointer") if isinstance(source, dict) else None
        )
        parts.append(f"{text} (parameter: {where})" if where else text)
    if parts:
        return redacted("; ".join(parts))
    kind = media_type(response)
    if kind.startswith("text/plain") and response.content.strip():
        text = response.content.decode("utf-8", "replace")
        return redacted(" ".join(text.split()), 200)
    return f"a body of {kind} that holds no _errors"


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    r"""(scheme, host, port) that `requests` connects to for `url`.

    What must match for the key to be sent there. Raises ValueError for a URL it cannot send.

    Read as requests prepares and urllib3 parses it, not by urllib.parse, which disagrees on
    some forms (`http://evil\@api/` is host "api" to urllib.parse, "evil" to urllib3).
    """
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        parts = urllib3.util.parse_url(prepared.url or "")
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise ValueError(str(exc)) from None
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def link_url(url_base: str, href: str, page_url: str | None = None) -> str:
    """The URL of an API link, refused unless it stays on api_url's origin.

    "Links are relative to the base URL" (the docs): a root-relative link ("/calls?...") is
    kept under api_url's own path, so an api_url behind a path-prefixed proxy keeps working.
    Any other link resolves as RFC 3986 says, against the page it came from (`page_url`; a
    query-only "?page[after]=..." keeps that page's path), and must then still be on
    api_url's scheme, host and port: the request carries the key. A backslash is refused
    outright: parsers disagree on where it ends a host.
    """
    try:
        if "\\" in href:
            raise ValueError("a backslash")
        if href.startswith("/") and not href.startswith("//"):
            url = url_base + href
        else:
            url = urljoin(page_url or url_base + "/", href)
        target = origin(url)
    except ValueError as exc:
        msg = (
            f"Amplemarket sent a link that is not a URL the tap can follow safely ({exc}): "
            "refusing to send the API key with it; check api_url"
        )
        raise ForeignLinkError(msg) from None
    if target != origin(url_base):
        scheme, host, port = target
        msg = (
            f"Amplemarket sent a link to another origin ({scheme}://{host}:{port}), not "
            f"{url_base}: refusing to send the API key there; check api_url"
        )
        raise ForeignLinkError(msg)
    return url


def shown_url(url: str) -> str:
    """`url` as it may be printed: without its userinfo and query (either may hold a secret)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(a URL that cannot be read)"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redirect_target(response: requests.Response) -> str:
    """Where a redirect points, as `scheme://host:port`, or that no URL can be read there."""
    try:
        scheme, host, port = origin(urljoin(response.url, response.headers["Location"]))
    except (KeyError, ValueError):
        return "no URL the tap can read"
    return f"{scheme}://{host}:{port}"
