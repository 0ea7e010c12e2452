"""The dashboard's /auth routes (ui/session_routes.py) over HTTP with Starlette's TestClient: the cookie's
attributes, one use per code, other origins refused, sign-out ending the session server-side."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.access import accounts
from core.services import signin
from ui.session_routes import routes

PASSWORD = "correct horse battery"


@pytest.fixture
def client() -> TestClient:
    accounts.add("doc1", "clinician", PASSWORD)
    return TestClient(Starlette(routes=routes()), base_url="http://testserver")


def _code() -> str:
    _account, _session, code = signin.sign_in("doc1", PASSWORD, client="ip:192.0.2.9")
    return code


def _set_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


def test_a_code_sets_an_httponly_strict_cookie_that_resumes_and_works_once(client: TestClient) -> None:
    code = _code()
    response = client.post("/auth/session", data={"code": code})
    assert response.status_code == 204
    morsel = _set_cookie(response)[signin.COOKIE_NAME]
    assert morsel["httponly"] and morsel["samesite"].lower() == "strict" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain HTTP here; see the HTTPS test below
    assert 0 < int(morsel["max-age"]) <= 12 * 3600
    found = signin.resume(morsel.value)
    assert found is not None and found[0].name == "doc1"
    again = client.post("/auth/session", data={"code": code})  # the code is used up
    assert again.status_code == 403 and "set-cookie" not in again.headers


def test_https_marks_the_cookie_secure(client: TestClient) -> None:
    response = client.post("/auth/session", data={"code": _code()}, headers={"x-forwarded-proto": "https"})
    assert response.status_code == 204 and _set_cookie(response)[signin.COOKIE_NAME]["secure"]


@pytest.mark.parametrize("body", [{"code": "not-a-code"}, {}, {"code": "x" * 5000}])
def test_a_wrong_missing_or_oversized_code_sets_nothing(client: TestClient, body: dict) -> None:
    response = client.post("/auth/session", data=body)
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_another_origin_is_refused_and_the_code_survives(client: TestClient) -> None:
    code = _code()
    response = client.post("/auth/session", data={"code": code}, headers={"origin": "https://evil.example"})
    assert response.status_code == 403 and "set-cookie" not in response.headers
    assert client.post("/auth/session", data={"code": code}, headers={"origin": "http://testserver"}).status_code == 204
    assert client.get("/auth/session").status_code == 405  # only a POST hands a cookie over


def test_sign_out_ends_the_session_server_side_and_expires_the_cookie(client: TestClient) -> None:
    cookie = _set_cookie(client.post("/auth/session", data={"code": _code()}))[signin.COOKIE_NAME].value
    client.cookies.clear()
    client.cookies.set(signin.COOKIE_NAME, cookie)
    refused = client.post("/auth/signout", headers={"origin": "https://evil.example"})
    assert refused.status_code == 403 and signin.resume(cookie) is not None  # no cross-site sign-out
    response = client.post("/auth/signout")
    assert response.status_code == 204
    morsel = _set_cookie(response)[signin.COOKIE_NAME]
    assert morsel.value in ("", '""') and int(morsel["max-age"]) == 0
    assert signin.resume(cookie) is None  # a copy of the cookie is now worth nothing
    client.cookies.clear()
    assert client.post("/auth/signout").status_code == 204  # no cookie: nothing to end, no error
