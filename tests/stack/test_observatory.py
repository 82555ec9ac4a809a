"""The Observatory scorer itself, on header sets whose grade the published rules fix."""

import pytest

from tests.stack.observatory import CORS_PROBE_ORIGIN, Response, Scan, grade

URL = "https://example.com/"
HTML = b"<!doctype html><title>t</title>"
STRONG = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def scan(headers: dict[str, str] | list[tuple[str, str]], body: bytes = HTML, **kwargs) -> Scan:
    pairs = list(headers.items()) if isinstance(headers, dict) else headers
    if not any(name.lower() == "content-type" for name, _ in pairs):
        pairs.append(("Content-Type", "text/html; charset=utf-8"))
    return Scan(page=Response(URL, 200, pairs, body), **kwargs)


def result(graded, test: str) -> str:
    return next(r.expectation for r in graded.results if r.test == test)


def test_a_response_with_no_security_headers_gets_a_d():
    graded = grade(scan({}))
    # CSP -25, HSTS -20, X-Frame-Options -20, X-Content-Type-Options -5.
    assert (graded.score, graded.grade) == (30, "D"), graded


def test_the_strongest_headers_earn_every_bonus_they_can():
    graded = grade(
        scan(STRONG, extra_set_cookies=["__Host-sessionid=x; Path=/; Secure; HttpOnly; SameSite=Lax"])
    )
    # CSP default-src 'none' +10, cookies +5, Referrer-Policy +5, frame-ancestors +5, CORP +10.
    assert (graded.score, graded.grade) == (135, "A+"), graded


def test_unsafe_inline_scripts_cost_20_and_withhold_every_bonus():
    headers = {
        **STRONG,
        "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; frame-ancestors 'none'",
    }
    graded = grade(scan(headers))
    assert result(graded, "content-security-policy") == "csp-implemented-with-unsafe-inline"
    # 100 - 20 = 80 is under 90: the +5s and +10s do not count.
    assert (graded.score, graded.grade) == (80, "B+"), graded


def test_unsafe_inline_beside_a_nonce_is_ignored_as_browsers_do():
    headers = {
        **STRONG,
        "Content-Security-Policy": "default-src 'self'; script-src 'nonce-abc' 'unsafe-inline'",
    }
    assert result(grade(scan(headers)), "content-security-policy") == "csp-implemented-with-no-unsafe"


def test_unsafe_inline_styles_only_forfeit_the_csp_bonus():
    headers = {**STRONG, "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"}
    graded = grade(scan(headers))
    assert result(graded, "content-security-policy") == "csp-implemented-with-unsafe-inline-in-style-src-only"
    # No frame-ancestors in this policy: X-Frame-Options is missing too (-20).
    assert result(graded, "x-frame-options") == "x-frame-options-not-implemented"
    assert graded.score == 80


def test_a_second_policy_can_only_narrow_the_first():
    headers = [
        *(item for item in STRONG.items() if item[0] != "Content-Security-Policy"),
        (
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
        ("Content-Security-Policy", "script-src 'self'"),
    ]
    assert result(grade(scan(headers)), "content-security-policy") == "csp-implemented-with-no-unsafe"


def test_a_repeated_csp_directive_makes_the_header_invalid():
    headers = {
        **STRONG,
        "Content-Security-Policy": "default-src 'none'; script-src 'self'; script-src 'none'",
    }
    assert result(grade(scan(headers)), "content-security-policy") == "csp-header-invalid"


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("sessionid=x; Secure; SameSite=Lax", "cookies-session-without-httponly-flag"),
        ("sessionid=x; HttpOnly; SameSite=Lax", "cookies-session-without-secure-flag-but-protected-by-hsts"),
        ("csrftoken=x; Secure", "cookies-anticsrf-without-samesite-flag"),
        ("theme=dark; Secure; SameSite=Sideways", "cookies-samesite-flag-invalid"),
        ("theme=dark; Secure", "cookies-secure-with-httponly-sessions"),
        ("__Host-csrftoken=x; Secure; SameSite=Lax", "cookies-secure-with-httponly-sessions-and-samesite"),
    ],
)
def test_cookie_flags(cookie: str, expected: str):
    assert result(grade(scan(STRONG, extra_set_cookies=[cookie])), "cookies") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=15552000", "hsts-implemented-max-age-at-least-six-months"),
        ("max-age=86400; includeSubDomains", "hsts-implemented-max-age-less-than-six-months"),
        ("includeSubDomains", "hsts-header-invalid"),
    ],
)
def test_hsts_max_age(value: str, expected: str):
    assert result(
        grade(scan({**STRONG, "Strict-Transport-Security": value})), "strict-transport-security"
    ) == (expected)


def test_a_header_sent_twice_is_read_as_one_value_and_fails():
    headers = [
        *STRONG.items(),
        ("X-Content-Type-Options", "nosniff"),
        ("Strict-Transport-Security", "max-age=1"),
    ]
    graded = grade(scan(headers))
    assert result(graded, "x-content-type-options") == "x-content-type-options-header-invalid"
    assert result(graded, "strict-transport-security") == "hsts-header-invalid"


def test_cors_that_reflects_any_origin_with_credentials_costs_50():
    cors = Response(
        URL,
        200,
        [("Access-Control-Allow-Origin", CORS_PROBE_ORIGIN), ("Access-Control-Allow-Credentials", "true")],
    )
    graded = grade(scan(STRONG, cors=cors))
    assert result(graded, "cross-origin-resource-sharing") == (
        "cross-origin-resource-sharing-implemented-with-universal-access"
    )
    assert graded.score == 50


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (["http://example.com:8080/", "https://example.com:8443/"], "redirection-to-https"),
        (["http://example.com/", "https://www.example.com/"], "redirection-off-host-from-http"),
        (
            ["http://example.com/", "http://www.example.com/", URL],
            "redirection-not-to-https-on-initial-redirection",
        ),
        (["http://example.com/"], "redirection-missing"),
    ],
)
def test_redirection_from_http(route: list[str], expected: str):
    responses = [Response(url, 301, []) for url in route]
    assert result(grade(scan(STRONG, http_route=responses)), "redirection") == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'<script src="/static/app.js"></script>',
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
        ),
        (
            b'<script src="https://cdn.example.net/x.js"></script>',
            "sri-not-implemented-but-external-scripts-loaded-securely",
        ),
        (
            b'<script src="https://cdn.example.net/x.js" integrity="sha384-abc" crossorigin></script>',
            "sri-implemented-and-external-scripts-loaded-securely",
        ),
        (
            b'<script src="http://cdn.example.net/x.js"></script>',
            "sri-not-implemented-and-external-scripts-not-loaded-securely",
        ),
    ],
)
def test_subresource_integrity(body: bytes, expected: str):
    assert result(grade(scan(STRONG, body=body)), "subresource-integrity") == expected


def test_a_json_response_needs_no_sri_and_reads_no_meta_tags():
    headers = {**STRONG, "Content-Type": "application/json"}
    graded = grade(scan(headers, body=b'{"a": "<script src=http://x/></script>"}'))
    assert result(graded, "subresource-integrity") == "sri-not-implemented-response-not-html"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("same-site", "cross-origin-resource-policy-implemented-with-same-site"),
        ("cross-origin", "cross-origin-resource-policy-implemented-with-cross-origin"),
        ("same-origin, same-origin", "cross-origin-resource-policy-header-invalid"),
    ],
)
def test_cross_origin_resource_policy(value: str, expected: str):
    headers = [*(item for item in STRONG.items() if item[0] != "Cross-Origin-Resource-Policy")]
    headers += [("Cross-Origin-Resource-Policy", v.strip()) for v in value.split(",")]
    assert result(grade(scan(headers)), "cross-origin-resource-policy") == expected
