"""ThrottleRetry: full-jitter delays, retries of throttling only, and the
deadline that bounds them; RetryingClient routes API calls through it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from certrotor.aws.retry import DEFAULT_BUDGET_SECONDS, RetryingClient, ThrottleRetry


def throttled(code: str = "ThrottlingException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, "PutSecretValue")


class Flaky:
    """Fails with `errors` in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def test_delays_are_full_jitter_doubling_up_to_the_cap() -> None:
    retry = ThrottleRetry(rng=lambda: 1.0)
    assert [retry.delay(a) for a in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    half = ThrottleRetry(first=0.5, cap=3.0, rng=lambda: 0.5)
    assert [half.delay(a) for a in range(4)] == [0.25, 0.5, 1.0, 1.5]
    assert ThrottleRetry(rng=lambda: 0.0).delay(5) == 0.0


def test_a_throttled_call_is_retried_after_each_delay_until_it_answers() -> None:
    sleeps: list[float] = []
    retry = ThrottleRetry(sleep=sleeps.append, rng=lambda: 1.0, remaining=lambda: 60.0)
    function = Flaky(throttled(), throttled("TooManyRequestsException"), throttled())
    assert retry.call(function, "a", key="b") == "answer"
    assert sleeps == [0.1, 0.2, 0.4]
    assert retry.throttled == 3
    assert function.calls == [(("a",), {"key": "b"})] * 4


def test_other_errors_are_raised_at_once() -> None:
    sleeps: list[float] = []
    retry = ThrottleRetry(sleep=sleeps.append)
    refused = throttled("AccessDeniedException")
    with pytest.raises(ClientError) as raised:
        retry.call(Flaky(refused))
    assert raised.value is refused
    assert sleeps == [] and retry.throttled == 0


def test_a_delay_the_deadline_cannot_fit_raises_the_throttling_error() -> None:
    sleeps: list[float] = []
    # 0.4 s left: the delays 0.1 and 0.2 fit, 0.4 does not.
    retry = ThrottleRetry(sleep=sleeps.append, rng=lambda: 1.0, remaining=lambda: 0.4)
    last = throttled()
    with pytest.raises(ClientError) as raised:
        retry.call(Flaky(throttled(), throttled(), last, throttled()))
    assert raised.value is last
    assert sleeps == [0.1, 0.2]
    assert retry.throttled == 3


def test_the_deadline_is_bound_per_invocation_and_defaults_to_a_budget() -> None:
    retry = ThrottleRetry()
    assert retry.remaining() == DEFAULT_BUDGET_SECONDS == 10.0
    retry.bind(lambda: 1.5)
    assert retry.remaining() == 1.5


def test_a_wrapped_client_retries_its_api_calls_only() -> None:
    class Client:
        meta = "meta"
        exceptions = "exceptions"
        region = "eu-west-1"

        def __init__(self) -> None:
            self.put_secret_value = Flaky(throttled())
            self.get_paginator = Flaky(throttled())

        def _private(self) -> str:
            return "private"

    sleeps: list[float] = []
    client = Client()
    wrapped = ThrottleRetry(sleep=sleeps.append, rng=lambda: 1.0, remaining=lambda: 60.0).wrap(client)
    assert isinstance(wrapped, RetryingClient)
    assert wrapped.put_secret_value(SecretId="s") == "answer"
    assert sleeps == [0.1]
    assert client.put_secret_value.calls == [((), {"SecretId": "s"})] * 2
    # Paginators, private methods and plain attributes pass through untouched.
    with pytest.raises(ClientError):
        wrapped.get_paginator("list_secrets")
    assert wrapped._private() == "private"
    assert (wrapped.meta, wrapped.exceptions, wrapped.region) == ("meta", "exceptions", "eu-west-1")
