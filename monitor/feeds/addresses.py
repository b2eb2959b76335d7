"""Which addresses a feed may reach, checked at connect time.

The policy (:class:`PrivateAccess`, from ``poll.allow_private`` and where a
feed was added) says which hosts one retrieval may reach at a non-public
address: this machine, a private network, link-local, multicast, reserved
(:func:`non_public`). :class:`GuardedTransport` enforces it where connections
are made: a request the policy does not allow goes through a pool that
resolves the host name itself, refuses non-public addresses and connects to
the address it checked, so a name that points elsewhere by the time of the
request (DNS rebinding) gains nothing. Requests that may reach any address
have a pool of their own; the two share no connection.

Nothing here makes a request: :mod:`monitor.feeds.fetch` builds its client
with this transport and marks each request with
:meth:`PrivateAccess.request_extensions`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = [
    "ALLOW_PRIVATE_SETTING",
    "ANY_ADDRESS",
    "PUBLIC_ONLY",
    "AddressRefused",
    "GuardedTransport",
    "PrivateAccess",
    "non_public",
    "private_access",
]

ALLOW_PRIVATE_SETTING = "poll.allow_private"
# NAT64 (RFC 6052): the last 32 bits are the IPv4 address the gateway connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
# The request extension that says a request may reach non-public addresses.
_PRIVATE_OK = "news_monitor.private_ok"


@dataclass(frozen=True)
class PrivateAccess:
    """Which hosts one retrieval may reach at a non-public address (this machine, a private network).

    ``everywhere``: any host, redirects included. ``hosts``: only these host
    names (lower case), so a redirect to another host is held to public
    addresses. Neither: public addresses only.
    """

    everywhere: bool = False
    hosts: frozenset[str] = frozenset()

    def allows(self, url: str) -> bool:
        if self.everywhere:
            return True
        return bool(self.hosts) and _host(url) in self.hosts

    def request_extensions(self, url: str) -> dict[str, bool]:
        """The extensions of a request for ``url`` that route it, in :class:`GuardedTransport`, to its pool."""
        return {_PRIVATE_OK: self.allows(url)}


PUBLIC_ONLY = PrivateAccess()
ANY_ADDRESS = PrivateAccess(everywhere=True)


def private_access(setting: bool | None, url: str, *, from_config: bool) -> PrivateAccess:
    """The policy for a feed at ``url``, given ``poll.allow_private`` (None when unset).

    Unset, a feed written in the config files may reach its own host wherever
    that is, while a feed added from the CLI or an OPML file, and any redirect
    to another host, may reach public addresses only: whoever can add feeds
    should not thereby reach the machine's or the network's private services.
    """
    if setting is True:
        return ANY_ADDRESS
    if setting is False or not from_config:
        return PUBLIC_ONLY
    return PrivateAccess(hosts=frozenset({_host(url)}))


def non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes ``address`` non-public (``"a loopback address"``...), or None for a public one.

    IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4,
    NAT64) are judged by the IPv4 address they lead to.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return non_public(embedded)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):
        # NAT64, or the deprecated IPv4-compatible ::a.b.c.d (not :: or ::1).
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class AddressRefused(Exception):
    """Raised at connect time: ``host`` resolves only to non-public addresses."""

    def __init__(self, host: str, address: str, kind: str) -> None:
        self.host = host
        self.address = address
        self.kind = kind
        where = f"{host} is {kind}" if host == address else f"{host} resolves to {address}, {kind}"
        super().__init__(f"refused: {where}; set {ALLOW_PRIVATE_SETTING}: true to allow")


class _PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses non-public addresses, connects to a checked one."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        allowed = [address for address in addresses if non_public(address) is None]
        if not allowed:
            first = addresses[0]
            raise AddressRefused(host, str(first), non_public(first) or "a refused address")
        failure: Exception | None = None
        for address in allowed:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(path, path, "a local socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, timeout: float | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses ``host`` resolves to now, each once, in the resolver's order."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    addresses: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        addresses.setdefault(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]), None)
    if not addresses:
        raise httpcore.ConnectError(f"{host} resolves to no address")
    return list(addresses)


class GuardedTransport(httpx.AsyncBaseTransport):
    """Two connection pools: one for requests a PrivateAccess lets reach any address, one for the rest.

    The second resolves and checks every address before it connects. The pools
    share no connection, so a connection opened for a request that may reach a
    private address never carries one that may not.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        # One TLS context for both pools: making one loads the CA bundle (about 50 ms of every start).
        tls = httpx.create_ssl_context()
        self._any = httpx.AsyncHTTPTransport(limits=limits, verify=tls)
        self._public = httpx.AsyncHTTPTransport(limits=limits, verify=tls)
        # httpx takes no network backend: the pool it built is replaced by one that has ours.
        # Refuse to run unguarded should a future httpx keep its pool elsewhere.
        if not isinstance(getattr(self._public, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("this httpx keeps no connection pool where news-monitor guards addresses")
        self._public._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PublicOnlyBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._any if request.extensions.get(_PRIVATE_OK) else self._public
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        try:
            await self._any.aclose()
        finally:
            await self._public.aclose()


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host.lower()
    except httpx.InvalidURL:
        return ""
