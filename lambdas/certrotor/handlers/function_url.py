"""A small router for Lambda Function URL events (payload format 2.0).

The issuer has three routes. Powertools' resolvers would import every event
source and resolver it has (AppSync, Bedrock, asyncio, ...) at each cold
start; this does what the issuer needs with the same response shape: routes
by method and path with `<param>` segments (one path segment each, undecoded),
exception handlers looked up along the exception's class hierarchy, a
not-found handler, and a base64 body decoded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Response:
    status_code: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, json.dumps(body), dict(headers or {}))

    def to_result(self) -> dict[str, Any]:
        return {
            "statusCode": self.status_code,
            "body": self.body,
            "isBase64Encoded": False,
            "headers": {**self.headers, "Content-Type": self.content_type},
            "cookies": [],
        }


class FunctionUrlEvent:
    """The parts of the event the routes read."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    @property
    def request_context(self) -> dict[str, Any]:
        context = self.raw.get("requestContext")
        return context if isinstance(context, dict) else {}

    @property
    def method(self) -> str:
        http = self.request_context.get("http")
        return str(http.get("method", "") if isinstance(http, dict) else "").upper()

    @property
    def path(self) -> str:
        return str(self.raw.get("rawPath") or "/")

    @property
    def decoded_body(self) -> str | None:
        body = self.raw.get("body")
        if body is None:
            return None
        if self.raw.get("isBase64Encoded"):
            try:
                return base64.b64decode(str(body), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise BadBody("the request body is not valid base64-encoded UTF-8") from None
        return str(body)


class BadBody(ValueError):
    """The event's body cannot be decoded."""


@dataclass(frozen=True)
class Invocation:
    """One request: its event and Lambda context."""

    current_event: FunctionUrlEvent
    lambda_context: Any


class NoRoute(LookupError):
    """No route matches the method and path."""


RouteHandler = Callable[..., Response]
ErrorHandler = Callable[[Any], Response]
_PARAM = re.compile(r"<(\w+)>")


class Router:
    """Routes, exception handlers and a not-found handler; resolve() serves one event."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], RouteHandler]] = []
        self._errors: dict[type[BaseException], ErrorHandler] = {}
        self._not_found: ErrorHandler | None = None

    def route(self, method: str, path: str) -> Callable[[RouteHandler], RouteHandler]:
        pattern = re.compile(
            "^" + _PARAM.sub(r"(?P<\1>[^/]+)", re.escape(path).replace(r"\<", "<").replace(r"\>", ">")) + "$"
        )

        def register(handler: RouteHandler) -> RouteHandler:
            self._routes.append((method.upper(), pattern, handler))
            return handler

        return register

    def exception_handler(
        self, kinds: type[BaseException] | list[type[BaseException]]
    ) -> Callable[[ErrorHandler], ErrorHandler]:
        def register(handler: ErrorHandler) -> ErrorHandler:
            for kind in kinds if isinstance(kinds, list) else [kinds]:
                self._errors[kind] = handler
            return handler

        return register

    def not_found(self, handler: ErrorHandler) -> ErrorHandler:
        self._not_found = handler
        return handler

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request = FunctionUrlEvent(event)
        invocation = Invocation(request, context)
        try:
            for method, pattern, handler in self._routes:
                match = pattern.match(request.path)
                if match and method == request.method:
                    return handler(invocation, **match.groupdict()).to_result()
            raise NoRoute(f"{request.method} {request.path}")
        except NoRoute as exc:
            if self._not_found is None:
                raise
            return self._not_found(exc).to_result()
        except Exception as exc:
            for kind in type(exc).__mro__:
                error_handler = self._errors.get(kind)
                if error_handler is not None:
                    return error_handler(exc).to_result()
            raise
