"""The gateway's port is bound before vLLM starts: a taken port fails fast, and vLLM cannot take it."""

from __future__ import annotations

import errno
import socket

import pytest

from serving.serve import PortInUseError, bind_listener


@pytest.fixture
def taken_port():  # type: ignore[no-untyped-def]
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_taken_port_is_refused_naming_the_address(taken_port: int) -> None:
    with pytest.raises(PortInUseError, match=f"127.0.0.1:{taken_port}.*LORAG_PORT"):
        bind_listener("127.0.0.1", taken_port)


def test_the_bound_port_is_held_but_refuses_connections_until_served() -> None:
    listener = bind_listener("127.0.0.1", 0)
    port = listener.getsockname()[1]
    try:
        # What vLLM's free-port helper does (bind without SO_REUSEADDR) cannot land on the gateway's port.
        with socket.socket() as probe, pytest.raises(OSError) as taken:
            probe.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect(("127.0.0.1", port))
    finally:
        listener.close()
