"""ip_address_problem: which IP SAN a policy allows, and the exact reason
for each refusal (the issuer returns it to the caller)."""

from __future__ import annotations

import pytest

from certrotor.pki.policy import ip_address_problem

PRIVATE = ["10.0.0.0/8", "fd00::/8"]


@pytest.mark.parametrize(
    ("address", "allowed", "problem"),
    [
        ("10.1.2.3", PRIVATE, None),
        ("fd00::5", PRIVATE, None),
        ("10.1.2.3", ["fd00::/8", "10.1.0.0/16"], None),
        ("11.0.0.1", PRIVATE, "not in the policy's allowed_ips"),
        ("fd01::5", ["fd00::/16"], "not in the policy's allowed_ips"),
        ("orders.internal", PRIVATE, "not an IP address"),
        ("::ffff:10.1.2.3", PRIVATE, "an IPv4-mapped IPv6 address; ask for the IPv4 address"),
        ("10.1.2.3", [], "the policy lists no allowed_ips"),
        ("0.0.0.0", ["0.0.0.0/1"], "unspecified, multicast and broadcast addresses are never certified"),
        ("::", ["::/1"], "unspecified, multicast and broadcast addresses are never certified"),
        ("239.1.1.1", ["224.0.0.0/3"], "unspecified, multicast and broadcast addresses are never certified"),
        ("ff02::1", ["ff00::/8"], "unspecified, multicast and broadcast addresses are never certified"),
        ("255.255.255.255", ["255.0.0.0/8"], "unspecified, multicast and broadcast addresses are never certified"),
        # Never-networks apply to their own IP version only.
        ("10.0.0.0", ["10.0.0.0/8"], None),
        # A special address needs a CIDR inside its special range.
        ("127.0.0.1", ["0.0.0.0/1"], "loopback (127.0.0.0/8) must be listed in allowed_ips itself"),
        ("127.0.0.1", ["127.0.0.1/32"], None),
        ("127.0.0.1", ["0.0.0.0/1", "127.0.0.0/8"], None),
        ("::1", ["::/1"], "loopback (::1/128) must be listed in allowed_ips itself"),
        ("::1", ["::1/128"], None),
        (
            "169.254.169.254",
            ["169.254.0.0/16"],
            "the instance metadata address (169.254.169.254/32) must be listed in allowed_ips itself",
        ),
        ("169.254.169.254", ["169.254.169.254/32"], None),
        (
            "169.254.170.2",
            ["169.254.0.0/16"],
            "the ECS task metadata address (169.254.170.2/32) must be listed in allowed_ips itself",
        ),
        ("169.254.1.1", ["169.254.0.0/16"], None),
        ("169.254.1.1", ["128.0.0.0/1"], "link-local (169.254.0.0/16) must be listed in allowed_ips itself"),
        ("fe80::1", ["fe80::/64"], None),
        ("fe80::1", ["fe00::/7"], "link-local (fe80::/10) must be listed in allowed_ips itself"),
        (
            "fd00:ec2::254",
            ["fd00::/8"],
            "the instance metadata address (fd00:ec2::254/128) must be listed in allowed_ips itself",
        ),
    ],
)
def test_each_address_is_allowed_or_refused_with_its_reason(
    address: str, allowed: list[str], problem: str | None
) -> None:
    assert ip_address_problem(address, allowed) == problem
