"""X-Forwarded-For counts only from a proxy we trust, and only the hops it appended.

GPT_MAX_RUNS_PER_ADDRESS bounds the runs one network address may queue. A
client writes whatever it likes in X-Forwarded-For; if its first entry were
the address, a new header per request would lift the bound. Over raw HTTP:
the header alone changes nothing; behind a proxy named in GPT_TRUSTED_PROXIES
(or on a Space) the entry its proxy appended counts, never the first.
"""

from __future__ import annotations

import pytest

from gpt.errors import ConfigError
from gpt.ui.addresses import forwarded_client, trusted_proxies
from helpers_app import launch_app
from helpers_http import call_api

LONG = ["addition", "char", "tiny", 100_000, 0, "", 0, "gpt", "", "", 1, 2, 16, 16, 8, 0.003, ""]  # a fresh person


def _start(url: str, forwarded: str) -> tuple[str, object]:
    return call_api(url, "start_run", LONG, headers={"X-Forwarded-For": forwarded})


def _addresses(demo, answers) -> set:
    """The network address each started run was counted under."""
    return {demo.manager.job(a[1][0]["name"]).address for a in answers if a[0] == "complete"}


@pytest.fixture
def server(tmp_path, monkeypatch):
    def start(**env):
        for name in ("GPT_TRUSTED_PROXIES", "SPACE_ID"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        made.append(launch_app(tmp_path / f"runs{len(made)}", GPT_MAX_RUNS_PER_ADDRESS=2, GPT_MAX_ITERS=100_000))
        return made[-1]

    made = []
    yield start
    for demo, _ in made:
        demo.close()
        demo.manager.shutdown(timeout=60)


def test_a_header_from_anyone_does_not_lift_the_per_address_bound(server):
    demo, url = server()
    started = [_start(url, f"203.0.113.{n}") for n in range(2)]
    assert [kind for kind, _ in started] == ["complete", "complete"]
    kind, answer = _start(url, "203.0.113.99")  # a third 'address', from the same peer
    assert kind == "error" and "GPT_MAX_RUNS_PER_ADDRESS" in answer["error"]
    assert _addresses(demo, started) == {"127.0.0.1"}


def test_behind_a_named_proxy_the_hop_it_appended_counts_never_the_first(server):
    demo, url = server(GPT_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    started = [_start(url, "6.6.6.6, 198.51.100.7"),  # what the client wrote, then what the proxy saw
               _start(url, "7.7.7.7, 198.51.100.7, 10.1.2.3")]  # two trusted proxies
    kind, answer = _start(url, "8.8.8.8, 198.51.100.7")
    assert kind == "error" and "GPT_MAX_RUNS_PER_ADDRESS" in answer["error"]
    started.append(_start(url, "198.51.100.7, 198.51.100.8"))  # another visitor
    assert [kind for kind, _ in started] == ["complete"] * 3
    assert _addresses(demo, started) == {"198.51.100.7", "198.51.100.8"}


def test_on_a_space_the_spaces_proxy_is_trusted_and_the_first_entry_still_is_not(server):
    demo, url = server(SPACE_ID="teacher/build-a-gpt")
    started = [_start(url, "1.1.1.1, 192.0.2.10"), _start(url, "2.2.2.2, 192.0.2.10, 10.16.3.80")]
    kind, answer = _start(url, "3.3.3.3, 192.0.2.10")
    assert kind == "error" and "GPT_MAX_RUNS_PER_ADDRESS" in answer["error"]
    assert _addresses(demo, started) == {"192.0.2.10"}


@pytest.mark.parametrize("peer, header, env, expected", [
    ("192.0.2.1", "1.2.3.4", {}, "192.0.2.1"),  # nobody trusted: the peer
    ("192.0.2.1", "1.2.3.4", {"GPT_TRUSTED_PROXIES": "10.0.0.0/8"}, "192.0.2.1"),  # the peer is not the proxy
    ("10.0.0.5", "1.2.3.4, 5.6.7.8", {"GPT_TRUSTED_PROXIES": "10.0.0.0/8"}, "5.6.7.8"),
    ("10.0.0.5", "5.6.7.8:4711", {"GPT_TRUSTED_PROXIES": "10.0.0.0/8"}, "5.6.7.8:4711"),
    ("10.0.0.5", "", {"GPT_TRUSTED_PROXIES": "10.0.0.0/8"}, "10.0.0.5"),
    ("10.16.3.80", "1.2.3.4, 5.6.7.8, 10.0.0.1", {"SPACE_ID": "u/s"}, "5.6.7.8"),
    ("10.16.3.80", ", ".join(["9.9.9.9"] * 1000) + ", 5.6.7.8", {"SPACE_ID": "u/s"}, "5.6.7.8"),
    ("::1", "2001:db8::1, [2001:db8::2]:443", {"GPT_TRUSTED_PROXIES": "::1"}, "[2001:db8::2]:443"),
])
def test_the_client_is_the_first_untrusted_hop_from_the_right(peer, header, env, expected):
    assert forwarded_client(peer, header, trusted_proxies(env)) == expected


def test_a_trusted_proxies_value_that_is_not_addresses_is_a_sentence():
    with pytest.raises(ConfigError, match="GPT_TRUSTED_PROXIES holds 'the-router'"):
        trusted_proxies({"GPT_TRUSTED_PROXIES": "127.0.0.1, the-router"})
