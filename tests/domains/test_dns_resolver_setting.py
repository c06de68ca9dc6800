"""VESTIBULE_DNS_RESOLVER: an IP address with an optional port, or a one-line ConfigError naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vestibule.conf.env import VARIABLES, ConfigError, load_config

GOOD_KEY = "k" * 40


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"VESTIBULE_DATA_DIR": str(tmp_path / "data"), "VESTIBULE_SECRET_KEY": GOOD_KEY, **values}


def test_unset_or_empty_means_the_system_resolver(tmp_path: Path) -> None:
    assert load_config(env(tmp_path)).dns_resolver is None
    assert load_config(env(tmp_path, VESTIBULE_DNS_RESOLVER=" ")).dns_resolver is None
    assert "VESTIBULE_DNS_RESOLVER" in VARIABLES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.53", ("10.0.0.53", 53)),
        (" 10.0.0.53:5353 ", ("10.0.0.53", 5353)),
        ("127.0.0.1:65535", ("127.0.0.1", 65535)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_good_values(tmp_path: Path, value: str, expected: tuple[str, int]) -> None:
    assert load_config(env(tmp_path, VESTIBULE_DNS_RESOLVER=value)).dns_resolver == expected


@pytest.mark.parametrize(
    "value",
    ["dns.example", "10.0.0.53:", "10.0.0.53:0", "10.0.0.53:65536", "10.0.0.53:x", "10.0.0.53:-1", "[10.0.0.53]:53",
     "[::1", "[::1]53", "[::1]:", "::1:53:x", "10.0.0.256", "udp://10.0.0.53", "10.0.0.53,10.0.0.54", "１0.0.0.53",
     "10.0.0.53:٥٣"],
)  # fmt: skip
def test_bad_values_are_a_one_line_config_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env(tmp_path, VESTIBULE_DNS_RESOLVER=value))
    message = str(caught.value)
    assert message.startswith("VESTIBULE_DNS_RESOLVER=") and "\n" not in message
