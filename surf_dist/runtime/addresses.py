"""Where a run listens: loopback for a run on one machine, one named address on a cluster, never the wildcard.

torch.distributed's rendezvous store and gloo's pairs have no authentication: whoever reaches their ports can join
or disturb a run. So every socket a run opens binds one address:

* forked ranks and a local Ray: ``127.0.0.1`` (``LOOPBACK``);
* torchrun ranks: ``run.node_address`` when set, else the address this machine uses to reach ``MASTER_ADDR``
  (``route_source``: loopback for ``--standalone``);
* Ray actors on a cluster: the address Ray reports for their node.

The store's server socket is bound here and handed to torch (``TCPStore(master_listen_fd=...)``), because torch's
own server binds every interface whatever host it is given; gloo binds the address of the interface named by
``GLOO_SOCKET_IFNAME``, which ``bind_gloo`` sets to the interface that holds the chosen address (a value the user
set is kept). This module imports no torch: the config's checks use it before any process starts.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct

LOOPBACK = "127.0.0.1"
GLOO_IFNAME = "GLOO_SOCKET_IFNAME"
_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def is_loopback(address: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or an IPv4-mapped loopback (``::ffff:127.0.0.1``)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address == "localhost"
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def address_problem(address: str, field: str) -> str | None:
    """Why ``address`` cannot be what a worker binds (None when it can): an IP literal of this machine, not the
    wildcard."""
    fix = "fix: an IP address of this machine (e.g. the one its peers reach it at), or leave it unset"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{field} = {address!r}: not an IP address; {fix}"
    if ip.is_unspecified or ip.is_multicast:
        return f"{field} = {address!r}: binds no single address (the wildcard or a multicast group); {fix}"
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
    except OSError as exc:
        return f"{field} = {address!r}: not an address of this machine ({exc.strerror or exc}); {fix}"
    return None


def route_source(host: str, port: int = 9) -> str:
    """The local address this machine sends from to reach ``host`` (a UDP ``connect`` sends nothing); loopback
    when ``host`` is this machine's loopback or cannot be resolved."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError:
        return LOOPBACK
    for family, kind, proto, _, where in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.connect(where)
                return str(s.getsockname()[0])
        except OSError:
            continue
    return LOOPBACK


def interface_of(address: str) -> str | None:
    """The name of the network interface that holds IPv4 ``address`` (``lo`` for 127.0.0.1 on Linux); None when
    none does or the platform cannot say."""
    try:
        want = socket.inet_aton(address)
    except OSError:
        return None
    if is_loopback(address):
        names = [name for _, name in socket.if_nameindex() if name in ("lo", "lo0")]
        if names:
            return names[0]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                try:
                    packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                except OSError:
                    continue  # an interface without an IPv4 address
                if packed[20:24] == want:
                    return name
    except OSError:
        return None
    return None


def bind_gloo(address: str) -> str | None:
    """Make this process's gloo pairs bind ``address``: ``GLOO_SOCKET_IFNAME`` = its interface, unless the user set
    one (kept). The interface now in force (None: gloo's default, the address the host name resolves to)."""
    if os.environ.get(GLOO_IFNAME):
        return os.environ[GLOO_IFNAME]
    name = interface_of(address)
    if name is not None:
        os.environ[GLOO_IFNAME] = name
    return name


def listening_socket(address: str, port: int = 0) -> socket.socket:
    """A TCP socket bound to ``address`` (port ``port``, 0: any free one) and listening: the rendezvous store's
    server socket, bound before any worker starts so that no other process can take its port meanwhile."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        s.listen(128)
    except BaseException:
        s.close()
        raise
    s.set_inheritable(True)  # forked ranks inherit it
    return s
