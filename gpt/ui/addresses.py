"""Where a request comes from: the network address GPT_MAX_RUNS_PER_ADDRESS counts.

A client writes whatever it likes in X-Forwarded-For, so the header counts
only when the peer that connected to us is a proxy we trust, and then only
the hops that trusted proxies appended: the header is read from the right,
past every trusted proxy, and the first address that is not one is the
client. Its first entry is never taken (that is the client's own writing).

Trusted proxies:
- GPT_TRUSTED_PROXIES: addresses or networks, comma-separated
  ("127.0.0.1, 10.0.0.0/8"), for a server behind a reverse proxy you run;
- on a Hugging Face Space (SPACE_ID is set) the Space's proxy: the peer, and
  private, loopback and link-local addresses in the header. The Space's own
  documentation does not say how many proxies append to the header; every
  proxy inside its network has such an address, so the first address from
  the right that is public is the one its edge appended for the visitor;
- nobody else: without either, the peer's own address.

Uvicorn would rewrite the peer itself from the header for a peer at
127.0.0.1 (FORWARDED_ALLOW_IPS, default "127.0.0.1"); `keep_peer_address`
turns that off before the server starts, so this module alone decides.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from ..errors import ConfigError

ENV = "GPT_TRUSTED_PROXIES"
MAX_HOPS = 32  # a longer header is read only this far from the right
INTERNAL = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10"))


def _ip(text: str):
    """An address from a header entry ('1.2.3.4', '1.2.3.4:80', '[::1]:80'), or None."""
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Proxies:
    networks: tuple = ()
    on_space: bool = False

    def trusts(self, address: str | None) -> bool:
        ip = _ip(address or "")
        if ip is None:
            return False
        return any(ip in net for net in self.networks + (INTERNAL if self.on_space else ()))

    def trusts_peer(self, peer: str | None) -> bool:
        return self.on_space or self.trusts(peer)


def trusted_proxies(env=None) -> Proxies:
    """The proxies whose X-Forwarded-For counts, from the environment; ConfigError for an entry that is neither."""
    env = os.environ if env is None else env
    networks = []
    for entry in (e.strip() for e in env.get(ENV, "").split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(f"{ENV} holds {entry[:60]!r}, which is neither an address nor a network; "
                              "give them comma-separated, e.g. 127.0.0.1, 10.0.0.0/8.") from None
    return Proxies(tuple(networks), on_space=bool(env.get("SPACE_ID")))


def forwarded_client(peer: str | None, forwarded_for: str, proxies: Proxies) -> str | None:
    """The client's address: `peer`, or when a trusted proxy connected, the last hop no trusted proxy is."""
    if peer is None or not forwarded_for or not proxies.trusts_peer(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")[-MAX_HOPS:] if h.strip()]
    for hop in reversed(hops):
        if not proxies.trusts(hop):
            return hop[:64]
    return hops[0][:64] if hops else peer  # every hop a trusted proxy: the request came from inside


def client_address(request) -> str | None:
    """The asker's network address (a gr.Request), by the rules above."""
    if request is None:
        return None
    headers = request.headers or {}
    forwarded = ",".join(headers.getlist("x-forwarded-for")) if hasattr(headers, "getlist") else \
        headers.get("x-forwarded-for", "")
    return forwarded_client(getattr(request.client, "host", None), forwarded, trusted_proxies())


def keep_peer_address() -> None:
    """Stop uvicorn from replacing the peer's address with a header's (its default for 127.0.0.1); call before launch.

    An operator who set FORWARDED_ALLOW_IPS keeps it: uvicorn then resolves the
    peer first and the rules above start from its answer.
    """
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "")
