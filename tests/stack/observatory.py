"""The MDN HTTP Observatory's grade of a response, computed here from its published scoring rules.

The Observatory (developer.mozilla.org/en-US/observatory) scans a public host; a stack on a
loopback port is out of its reach, so the tests grade the responses they fetched with this port
of its rules: ten tests, each giving one result with a score modifier, over a baseline of 100.
Bonuses count only when the score without them is 90 or more; 100 or more is an A+.

Where a rule needs something a local scan cannot have, the choice made here:

- HSTS preload list: nothing local is on it, so no test gets the preload bonus or exemption.
- Certificates: the scan trusts the test's own certificate authority, so a chain it verified
  counts as valid (the Observatory would need a public CA; that is the operator's step).
- Redirection: the Observatory follows http://host/ to its final page and compares host
  *names*, not ports; the local stack listens for HTTP and HTTPS on two free ports of one host,
  and the same rule applies unchanged: http://localhost:P1/ -> https://localhost:P2/ is
  "redirection to HTTPS on the same host".
- Registrable domains (the SRI test's "same second-level domain"): the last two labels of the
  host name, instead of the public suffix list.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

# The origin the Observatory sends when it probes CORS.
CORS_PROBE_ORIGIN = "https://http-observatory.security.mozilla.org"
MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# 15768000 s is six months; the Observatory accepts the common 15552000 (180 days).
SIX_MONTHS = 15_552_000

MODIFIERS: dict[str, int] = {
    # Content Security Policy
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-but-duplicate-directives": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    "csp-not-implemented-but-reporting-enabled": -25,
    # Cookies
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    # Cross-origin resource sharing
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    # Redirection
    "redirection-all-redirects-preloaded": 0,
    "redirection-to-https": 0,
    "redirection-not-needed-no-http": 0,
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-not-to-https": -20,
    "redirection-missing": -20,
    "redirection-invalid-cert": -20,
    # Referrer-Policy
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    # Strict-Transport-Security
    "hsts-preloaded": 5,
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    "hsts-not-implemented-no-https": -20,
    "hsts-invalid-cert": -20,
    # Subresource integrity
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    "html-not-parsable": -20,
    # X-Content-Type-Options
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    # X-Frame-Options
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 0,
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    # Cross-Origin-Resource-Policy
    "cross-origin-resource-policy-implemented-with-same-origin": 10,
    "cross-origin-resource-policy-implemented-with-same-site": 10,
    "cross-origin-resource-policy-implemented-with-cross-origin": 0,
    "cross-origin-resource-policy-not-implemented": 0,
    "cross-origin-resource-policy-header-invalid": -5,
}

GRADES = (
    (100, "A+"),
    (90, "A"),
    (85, "A-"),
    (80, "B+"),
    (70, "B"),
    (65, "B-"),
    (60, "C+"),
    (50, "C"),
    (45, "C-"),
    (40, "D+"),
    (30, "D"),
    (25, "D-"),
    (0, "F"),
)


@dataclass
class Response:
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    # The TLS chain was verified (against the test's own CA, see the module's docstring).
    verified: bool = True

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        """What an HTTP client library hands the Observatory: repeated headers joined by ", "."""
        values = self.values(name)
        return ", ".join(values) if values else None

    @property
    def mime(self) -> str:
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()


@dataclass
class Scan:
    """What the Observatory fetches: the page (over HTTPS, after redirects), the route that
    http:// takes to it, the page again with a foreign Origin, and every cookie set meanwhile."""

    page: Response
    http_route: list[Response] | None = None
    cors: Response | None = None
    extra_set_cookies: list[str] = field(default_factory=list)

    @property
    def https(self) -> bool:
        return urlsplit(self.page.url).scheme == "https"

    def set_cookies(self) -> list[str]:
        found = list(self.extra_set_cookies)
        for response in [*(self.http_route or []), self.page]:
            found += response.values("Set-Cookie")
        return found


@dataclass(frozen=True)
class Result:
    test: str
    expectation: str

    @property
    def modifier(self) -> int:
        return MODIFIERS[self.expectation]


@dataclass(frozen=True)
class Grade:
    score: int
    grade: str
    results: tuple[Result, ...]

    def __str__(self) -> str:
        lines = [f"score {self.score} ({self.grade})"]
        lines += [f"  {r.modifier:+4d}  {r.test}: {r.expectation}" for r in self.results]
        return "\n".join(lines)


# --- Parsing ---------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.http_equiv: dict[str, list[str]] = {}
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "meta" and attributes.get("http-equiv") and attributes.get("content") is not None:
            name = str(attributes["http-equiv"]).lower()
            self.http_equiv.setdefault(name, []).append(str(attributes["content"]))
        elif tag == "script":
            self.scripts.append(attributes)


def _page(response: Response) -> _Page:
    parser = _Page()
    if response.mime in HTML_TYPES or not response.mime:
        parser.feed(response.body.decode("utf-8", errors="replace"))
    return parser


class InvalidPolicy(ValueError):
    pass


@dataclass
class _Source:
    source: str
    index: int  # which policy it came from
    keep: bool


def _path_part_match(a: str, b: str) -> bool:
    if not a:
        return True
    if a == "/" and not b:
        return True
    exact = not a.endswith("/")
    parts_a, parts_b = a.split("/"), b.split("/")
    if len(parts_a) > len(parts_b) or (exact and len(parts_a) != len(parts_b)):
        return False
    if not exact:
        parts_a.pop()
    return all(unquote(x) == unquote(y) for x, y in zip(parts_a, parts_b, strict=False))


def parse_csp(policies: list[str]) -> dict[str, set[str]]:
    """The Observatory's CSP parser: several policies intersect; a repeated directive is invalid."""
    cleaned = [policy.replace("\r", "").replace("\n", "").strip() for policy in policies]
    if not cleaned:
        return {}
    if any(len(policy) < len("img-src") - 1 for policy in cleaned):
        raise InvalidPolicy(cleaned)
    csp: dict[str, list[_Source]] = {}
    duplicates: set[str] = set()
    for index, policy in enumerate(cleaned):
        seen: set[str] = set()
        for entry in policy.split(";"):
            words = entry.strip().split()
            if not words:
                continue
            directive = words[0].lower()
            if directive in seen:
                if directive in {"report-uri", "report-to"}:
                    duplicates.add(directive)
                else:
                    raise InvalidPolicy(f"duplicate directive {directive}")
            seen.add(directive)
            keep = index == 0
            values = [_Source(word.strip().lower(), index, keep) for word in words[1:]]
            if not values and directive.endswith("-src"):
                values = [_Source("'none'", index, keep)]
            combined = values if index == 0 else [*csp.get(directive, []), *values]
            combined.sort(key=lambda source: source.source)
            for previous, source in itertools.pairwise(combined):
                if source.index == previous.index and source.source.startswith(previous.source):
                    source.keep = False
                if source.index != previous.index and _path_part_match(previous.source, source.source):
                    source.keep = True
            csp[directive] = [source for source in combined if source.keep]
            if index == 0 and len(policies) > 1:
                for source in csp[directive]:
                    source.keep = False
    final = {
        directive: ({source.source for source in sources} if sources else {"'none'"})
        for directive, sources in csp.items()
    }
    if duplicates:
        final["_duplicates"] = duplicates
    return final


def _split_policies(values: Iterable[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",")]


# --- The ten tests ---------------------------------------------------------------------------

DANGEROUSLY_BROAD = {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
UNSAFE_INLINE = {"'unsafe-inline'", "data:"}
NONCES_HASHES = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")


def _csp(scan: Scan) -> tuple[str, dict[str, set[str]] | None]:
    """The CSP result and the parsed policy (None when there is none or it cannot be parsed)."""
    response = scan.page
    http_policies = _split_policies(response.values("Content-Security-Policy"))
    meta_policies = _split_policies(_page(response).http_equiv.get("content-security-policy", []))
    try:
        csp = parse_csp(http_policies + meta_policies)
    except InvalidPolicy:
        return "csp-header-invalid", None
    try:
        header_only = parse_csp(http_policies)
    except InvalidPolicy:
        header_only = {}
    try:
        meta = parse_csp(meta_policies)
        for directive in ("frame-ancestors", "report-uri", "sandbox"):
            meta.pop(directive, None)
    except InvalidPolicy:
        meta = {}
    if not header_only and not meta:
        if response.values("Content-Security-Policy-Report-Only"):
            return "csp-not-implemented-but-reporting-enabled", None
        return "csp-not-implemented", None

    result: str | None = None
    object_src = csp.get("object-src") or csp.get("default-src") or {"*"}
    script_src = csp.get("script-src") or csp.get("default-src") or {"*"}
    style_src = csp.get("style-src") or csp.get("default-src") or {"*"}
    for sources in (script_src, style_src):
        if any(s.startswith(NONCES_HASHES) for s in sources):
            sources.discard("'unsafe-inline'")
    if any(s.startswith(NONCES_HASHES) for s in script_src) and "'strict-dynamic'" in script_src:
        for source in list(script_src):
            if source.startswith(tuple(DANGEROUSLY_BROAD)) or source in {"'self'", "'unsafe-inline'"}:
                script_src.discard(source)
    elif "'strict-dynamic'" in script_src:
        result = "csp-header-invalid"

    passive = {"img-src", "media-src"}
    active_sources = [
        s for directive, sources in csp.items() if directive not in passive | {"script-src"} for s in sources
    ] + list(script_src)
    passive_sources = [s for d in passive for s in (csp.get(d) or csp.get("default-src") or set())]

    def first(expectation: str) -> None:
        nonlocal result
        if result is None:
            result = expectation

    if script_src & (DANGEROUSLY_BROAD | UNSAFE_INLINE) or object_src & DANGEROUSLY_BROAD:
        first("csp-implemented-with-unsafe-inline")
    if scan.https and any(s.startswith(("http:", "ftp:")) for s in active_sources):
        first("csp-implemented-with-insecure-scheme")
    if "'unsafe-eval'" in script_src | style_src:
        first("csp-implemented-with-unsafe-eval")
    if scan.https and any(s.startswith(("http:", "ftp:")) for s in passive_sources):
        first("csp-implemented-with-insecure-scheme-in-passive-content-only")
    if style_src & (DANGEROUSLY_BROAD | UNSAFE_INLINE):
        first("csp-implemented-with-unsafe-inline-in-style-src-only")
    if csp.get("default-src") == {"'none'"}:
        first("csp-implemented-with-no-unsafe-default-src-none")
    else:
        first("csp-implemented-with-no-unsafe")
    passing = {
        "csp-implemented-with-no-unsafe",
        "csp-implemented-with-no-unsafe-default-src-none",
        "csp-implemented-with-unsafe-inline-in-style-src-only",
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
    }
    assert result is not None
    if result in passing and "_duplicates" in csp:
        result = "csp-implemented-but-duplicate-directives"
    return result, csp


def content_security_policy(scan: Scan) -> Result:
    return Result("content-security-policy", _csp(scan)[0])


@dataclass
class Cookie:
    name: str
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None


def parse_set_cookie(value: str) -> Cookie:
    name_value, *attributes = value.split(";")
    cookie = Cookie(name=name_value.split("=", 1)[0].strip())
    for attribute in attributes:
        key, _, argument = attribute.strip().partition("=")
        key = key.strip().lower()
        if key == "secure":
            cookie.secure = True
        elif key == "httponly":
            cookie.http_only = True
        elif key == "samesite" and argument.strip().lower() in {"strict", "lax", "none"}:
            cookie.same_site = argument.strip().lower()
    return cookie


def _same_site_attribute_invalid(value: str) -> bool:
    for attribute in value.strip().split(";")[1:]:
        key, _, argument = attribute.strip().partition("=")
        if key.strip().lower() == "samesite" and argument.strip().lower() not in {"lax", "strict", "none"}:
            return True
    return False


_COOKIE_BADNESS = [
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
]


def _worse(new: str, old: str | None, order: list[str]) -> str:
    return new if old is None or order.index(new) > order.index(old) else old


def cookies(scan: Scan) -> Result:
    hsts = strict_transport_security(scan).expectation in {
        "hsts-implemented-max-age-at-least-six-months",
        "hsts-preloaded",
    }
    raw = scan.set_cookies()
    result: str | None = None
    for value in raw:
        if _same_site_attribute_invalid(value):
            result = _worse("cookies-samesite-flag-invalid", result, _COOKIE_BADNESS)
    jar = [parse_set_cookie(value) for value in raw]
    if not jar:
        return Result("cookies", "cookies-not-found")
    missing_same_site = False
    for cookie in jar:
        name = cookie.name.lower()
        session = "login" in name or "sess" in name
        anti_csrf = "csrf" in name
        if not cookie.secure and cookie.same_site == "none":
            result = _worse("cookies-samesite-flag-invalid", result, _COOKIE_BADNESS)
        if not cookie.secure:
            flag = (
                "cookies-without-secure-flag-but-protected-by-hsts" if hsts else "cookies-without-secure-flag"
            )
            result = _worse(flag, result, _COOKIE_BADNESS)
        if anti_csrf and not cookie.same_site:
            result = _worse("cookies-anticsrf-without-samesite-flag", result, _COOKIE_BADNESS)
        if session and not cookie.secure:
            flag = (
                "cookies-session-without-secure-flag-but-protected-by-hsts"
                if hsts
                else "cookies-session-without-secure-flag"
            )
            result = _worse(flag, result, _COOKIE_BADNESS)
        if session and not cookie.http_only:
            result = _worse("cookies-session-without-httponly-flag", result, _COOKIE_BADNESS)
        missing_same_site = missing_same_site or not cookie.same_site
    if result is None:
        result = (
            "cookies-secure-with-httponly-sessions"
            if missing_same_site
            else "cookies-secure-with-httponly-sessions-and-samesite"
        )
    return Result("cookies", result)


def cross_origin_resource_sharing(scan: Scan) -> Result:
    name = "cross-origin-resource-sharing"
    allowed = scan.cors.header("Access-Control-Allow-Origin") if scan.cors else None
    if scan.cors is None or not allowed:
        return Result(name, f"{name}-not-implemented")
    allowed = allowed[:256].strip().lower()
    credentials = (scan.cors.header("Access-Control-Allow-Credentials") or "").strip().lower()
    if allowed == "*":
        return Result(name, f"{name}-implemented-with-public-access")
    if allowed == CORS_PROBE_ORIGIN and credentials == "true":
        return Result(name, f"{name}-implemented-with-universal-access")
    return Result(name, f"{name}-implemented-with-restricted-access")


def redirection(scan: Scan) -> Result:
    route = scan.http_route
    if not route:
        return Result("redirection", "redirection-not-needed-no-http")
    if not route[0].verified:
        return Result("redirection", "redirection-invalid-cert")
    urls = [urlsplit(response.url) for response in route]
    if len(urls) == 1:
        expectation = "redirection-missing"
    elif urls[-1].scheme != "https":
        expectation = "redirection-not-to-https"
    elif urls[1].scheme == "http":
        expectation = "redirection-not-to-https-on-initial-redirection"
    elif urls[0].scheme == "http" and urls[1].scheme == "https" and urls[0].hostname != urls[1].hostname:
        expectation = "redirection-off-host-from-http"
    else:
        expectation = "redirection-to-https"
    return Result("redirection", expectation)


def referrer_policy(scan: Scan) -> Result:
    private = ["no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"]
    unsafe = ["origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade"]
    values = scan.page.values("Referrer-Policy") + _page(scan.page).http_equiv.get("referrer-policy", [])
    if not values:
        return Result("referrer-policy", "referrer-policy-not-implemented")
    known = [p.strip().lower() for p in ", ".join(values).split(",") if p.strip().lower() in private + unsafe]
    policy = known[-1] if known else ""
    if policy in private:
        return Result("referrer-policy", "referrer-policy-private")
    if policy in unsafe:
        return Result("referrer-policy", "referrer-policy-unsafe")
    return Result("referrer-policy", "referrer-policy-header-invalid")


def strict_transport_security(scan: Scan) -> Result:
    name = "strict-transport-security"
    if not scan.https:
        return Result(name, "hsts-not-implemented-no-https")
    if not scan.page.verified:
        return Result(name, "hsts-invalid-cert")
    header = scan.page.header("Strict-Transport-Security")
    if header is None:
        return Result(name, "hsts-not-implemented")
    header = header[:1024]
    max_age: int | None = None
    if "," in header:
        return Result(name, "hsts-header-invalid")
    for parameter in (p.strip().lower() for p in header.split(";")):
        if parameter.startswith("max-age="):
            digits = parameter[8:128].strip()
            try:
                max_age = int(digits)
            except ValueError:
                return Result(name, "hsts-header-invalid")
    if max_age is None:
        return Result(name, "hsts-header-invalid")
    if max_age < SIX_MONTHS:
        return Result(name, "hsts-implemented-max-age-less-than-six-months")
    return Result(name, "hsts-implemented-max-age-at-least-six-months")


def _registrable_domain(host: str | None) -> str:
    return ".".join((host or "").lower().split(".")[-2:])


_SRI_BADNESS = [
    "sri-implemented-and-all-scripts-loaded-securely",
    "sri-implemented-and-external-scripts-loaded-securely",
    "sri-implemented-but-external-scripts-not-loaded-securely",
    "sri-not-implemented-but-external-scripts-loaded-securely",
    "sri-not-implemented-and-external-scripts-not-loaded-securely",
    "sri-not-implemented-response-not-html",
]


def subresource_integrity(scan: Scan) -> Result:
    name = "subresource-integrity"
    if scan.page.mime and scan.page.mime not in HTML_TYPES:
        return Result(name, "sri-not-implemented-response-not-html")
    scripts = _page(scan.page).scripts
    if not scripts:
        return Result(name, "sri-not-implemented-but-no-scripts-loaded")
    result: str | None = None
    foreign = False
    site = _registrable_domain(urlsplit(scan.page.url).hostname)
    for script in scripts:
        src = script.get("src")
        if not src:
            continue
        integrity = script.get("integrity")
        relative_protocol = src.startswith("//") and not src.startswith("///")
        full_url = src.lower().startswith(("http://", "https://"))
        relative_origin = not relative_protocol and not full_url
        same_domain = (
            relative_protocol or relative_origin or _registrable_domain(urlsplit(src).hostname) == site
        )
        secure_origin = relative_origin or (same_domain and not relative_protocol)
        foreign = foreign or not secure_origin
        secure_scheme = (full_url and src.lower().startswith("https://")) or (relative_origin and scan.https)
        if not secure_origin:
            if integrity and not secure_scheme:
                result = _worse(
                    "sri-implemented-but-external-scripts-not-loaded-securely", result, _SRI_BADNESS
                )
            elif not integrity and secure_scheme:
                result = _worse(
                    "sri-not-implemented-but-external-scripts-loaded-securely", result, _SRI_BADNESS
                )
            elif not integrity:
                result = _worse(
                    "sri-not-implemented-and-external-scripts-not-loaded-securely", result, _SRI_BADNESS
                )
        elif integrity and secure_scheme and result is None:
            result = "sri-implemented-and-all-scripts-loaded-securely"
    if result is None:
        result = (
            "sri-implemented-and-external-scripts-loaded-securely"
            if foreign
            else "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
        )
    return Result(name, result)


def x_content_type_options(scan: Scan) -> Result:
    header = scan.page.header("X-Content-Type-Options")
    if header is None:
        return Result("x-content-type-options", "x-content-type-options-not-implemented")
    if header[:256].strip().lower() == "nosniff":
        return Result("x-content-type-options", "x-content-type-options-nosniff")
    return Result("x-content-type-options", "x-content-type-options-header-invalid")


def x_frame_options(scan: Scan) -> Result:
    name = "x-frame-options"
    _, csp = _csp(scan)
    if csp and "frame-ancestors" in csp:
        return Result(name, "x-frame-options-implemented-via-csp")
    header = scan.page.header("X-Frame-Options")
    if header is None:
        return Result(name, "x-frame-options-not-implemented")
    value = header[:1024].strip().lower()
    if value in {"deny", "sameorigin"}:
        return Result(name, "x-frame-options-sameorigin-or-deny")
    if value.startswith("allow-from"):
        return Result(name, "x-frame-options-allow-from-origin")
    return Result(name, "x-frame-options-header-invalid")


def cross_origin_resource_policy(scan: Scan) -> Result:
    name = "cross-origin-resource-policy"
    header = scan.page.header("Cross-Origin-Resource-Policy")
    equiv = _page(scan.page).http_equiv.get("cross-origin-resource-policy", [])
    value = header if header else (equiv[-1] if equiv else None)
    if not value:
        return Result(name, f"{name}-not-implemented")
    expectation = {
        "same-site": f"{name}-implemented-with-same-site",
        "same-origin": f"{name}-implemented-with-same-origin",
        "cross-origin": f"{name}-implemented-with-cross-origin",
    }.get(value[:256].strip().lower(), f"{name}-header-invalid")
    return Result(name, expectation)


TESTS = (
    content_security_policy,
    cookies,
    cross_origin_resource_sharing,
    redirection,
    referrer_policy,
    strict_transport_security,
    subresource_integrity,
    x_content_type_options,
    x_frame_options,
    cross_origin_resource_policy,
)


def letter(score: int) -> str:
    return next(grade for floor, grade in GRADES if max(score, 0) >= floor)


def grade(scan: Scan) -> Grade:
    results = tuple(test(scan) for test in TESTS)
    penalties = sum(min(result.modifier, 0) for result in results)
    uncurved = 100 + penalties
    score = 100 + sum(r.modifier for r in results) if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT else uncurved
    score = max(score, 0)
    return Grade(score=score, grade=letter(score), results=results)
