"""The issuer's Function URL router: routes, path parameters, errors, bodies."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from certrotor.handlers.function_url import BadBody, Invocation, Response, Router


class Refused(ValueError):
    pass


class TooFast(Refused):
    pass


def event(method: str, path: str, body: str | None = None, base64_encoded: bool = False) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": path,
        "requestContext": {"http": {"method": method, "path": path}, "authorizer": {"iam": {"userArn": "arn:me"}}},
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


@pytest.fixture
def router() -> Router:
    app = Router()

    @app.route("POST", "/certificates")
    def post(request: Invocation) -> Response:
        return Response.json(201, {"body": request.current_event.decoded_body, "context": request.lambda_context})

    @app.route("GET", "/sets/<name>")
    def get(request: Invocation, name: str) -> Response:
        return Response.json(200, {"name": name}, {"Retry-After": "1"})

    @app.route("POST", "/sets/<name>/issue")
    def issue(request: Invocation, name: str) -> Response:
        if name == "slow":
            raise TooFast("slow down")
        if name == "boom":
            raise RuntimeError("unmapped")
        raise Refused("no")

    app.exception_handler(Refused)(lambda exc: Response.json(400, {"error": type(exc).__name__}))
    app.not_found(lambda exc: Response.json(404, {"error": "no_route"}))
    return app


def test_a_route_answers_in_the_function_url_response_format(router: Router) -> None:
    result = router.resolve(event("GET", "/sets/demo%2Fweb"), None)

    assert result == {
        "statusCode": 200,
        "body": json.dumps({"name": "demo%2Fweb"}),
        "isBase64Encoded": False,
        "headers": {"Retry-After": "1", "Content-Type": "application/json"},
        "cookies": [],
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/sets/x"), ("GET", "/nowhere"), ("GET", "/sets/x/"), ("GET", "/sets/a/b"), ("DELETE", "/certificates")],
)
def test_a_method_and_path_no_route_takes_goes_to_the_not_found_handler(router: Router, method: str, path: str) -> None:
    result = router.resolve(event(method, path), None)

    assert (result["statusCode"], json.loads(result["body"])) == (404, {"error": "no_route"})


def test_methods_match_in_any_case_and_the_context_reaches_the_route(router: Router) -> None:
    result = router.resolve(event("post", "/certificates", "{}"), "the context")

    assert result["statusCode"] == 201
    assert json.loads(result["body"]) == {"body": "{}", "context": "the context"}


def test_a_base64_body_is_decoded(router: Router) -> None:
    encoded = base64.b64encode(b'{"csr": "x"}').decode()

    result = router.resolve(event("POST", "/certificates", encoded, base64_encoded=True), None)

    assert json.loads(result["body"])["body"] == '{"csr": "x"}'


def test_a_body_that_is_not_base64_is_refused_when_read() -> None:
    app = Router()
    app.route("POST", "/certificates")(lambda request: Response.json(200, {"b": request.current_event.decoded_body}))
    app.exception_handler(BadBody)(lambda exc: Response.json(400, {"error": str(exc)}))

    result = app.resolve(event("POST", "/certificates", "not base64!", base64_encoded=True), None)

    assert result["statusCode"] == 400


def test_an_exception_goes_to_the_handler_of_its_nearest_class(router: Router) -> None:
    assert json.loads(router.resolve(event("POST", "/sets/slow/issue"), None)["body"]) == {"error": "TooFast"}
    assert json.loads(router.resolve(event("POST", "/sets/x/issue"), None)["body"]) == {"error": "Refused"}


def test_an_exception_without_a_handler_propagates(router: Router) -> None:
    with pytest.raises(RuntimeError, match="unmapped"):
        router.resolve(event("POST", "/sets/boom/issue"), None)
