"""Process lifecycle: a SIGTERM is a graceful stop from the moment portico
accepts its first connection (SPEC section 10)."""

CONFIG = """
workers: 2
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def test_sigterm_at_first_accept_exits_cleanly(portico, upstream):
    # wait_ready returns at the first accepted connection; SIGTERM right
    # then must find the handlers installed (exit 0, not death by signal).
    for _ in range(15):
        px = portico(CONFIG, up=upstream.port)
        assert px.stop() == 0

