"""The default origin rule: the relay's own pages, with the scheme it really serves."""

from __future__ import annotations

from desktop_relay.relay.transport.origins import own_origin


def test_own_https_origin_is_allowed_and_others_are_not() -> None:
    allowed = own_origin(lambda: "https")
    environ = {"HTTP_HOST": "192.168.1.20:8086"}
    assert allowed("https://192.168.1.20:8086", environ)
    assert not allowed("http://192.168.1.20:8086", environ)  # engine.io's default would pass
    assert not allowed("https://evil.example", environ)


def test_behind_a_proxy_the_forwarded_origin_is_allowed() -> None:
    allowed = own_origin(lambda: "http")
    environ = {"HTTP_HOST": "127.0.0.1:8086", "HTTP_X_FORWARDED_PROTO": "https",
               "HTTP_X_FORWARDED_HOST": "studio.example, inner"}
    assert allowed("https://studio.example", environ)
    assert allowed("http://127.0.0.1:8086", environ)
    assert not allowed("https://inner", environ)
