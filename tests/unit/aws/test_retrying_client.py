"""RetryingClient: API calls keep every argument; what is not an API call
(private members, paginators, waiters) is handed out untouched, so a
throttling error from it is not retried by this layer."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from certrotor.aws.retry import ThrottleRetry


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Op")


class Once:
    """Throttled on its first call, then answers with what it was given."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        self.calls += 1
        if self.calls == 1:
            raise throttled()
        return args, kwargs


class Client:
    def __init__(self) -> None:
        self.put_secret_value = Once()
        self._make_api_call = Once()
        self.get_paginator = Once()
        self.get_waiter = Once()
        self.can_paginate = Once()


def wrapped(client: Client) -> Any:
    return ThrottleRetry(sleep=lambda _: None, rng=lambda: 0.0, remaining=lambda: 60.0).wrap(client)


def test_an_api_call_keeps_its_positional_and_keyword_arguments_across_a_retry() -> None:
    client = Client()
    assert wrapped(client).put_secret_value("first", SecretId="s") == (("first",), {"SecretId": "s"})
    assert client.put_secret_value.calls == 2


@pytest.mark.parametrize("name", ["_make_api_call", "get_paginator", "get_waiter", "can_paginate"])
def test_members_that_are_not_api_calls_are_not_retried(name: str) -> None:
    client = Client()
    member = getattr(wrapped(client), name)
    assert member is getattr(client, name)
    with pytest.raises(ClientError):
        member("x")
