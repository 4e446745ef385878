/*
 * tunnel.c: WebSocket and other Upgrade tunnels (SPEC section 4).  Only a
 * 101 answering an upgrade request switches an exchange to bytes both ways,
 * with backpressure each way and the route's tunnel idle timeout, which
 * counts silence in both directions: a side that times out while the other
 * was active keeps going.
 */
#include <stdlib.h>
#include <event2/buffer.h>

#include "exchange_int.h"
#include "portico/route.h"

enum upstream_next
tunnel_start(struct exchange *ex, struct head *h)
{
	uint64_t ms = ex->route->tunnel_ms;
	struct stream_response r;

	relay_fields(ex, h, &r);
	r.no_body = false;
	r.length = -1;
	r.upgrade = true;
	r.close = true;
	ex->status = 101;
	ex->tunnel_last_us = ex_now_us();
	ex_set_phase(ex, ex->rq, EXCHANGE_RESP_TUNNEL);
	stream_send_head(ex->s, &r);
	stream_tunnel(ex->s, ms);
	upstream_set_read_timeout(ex->up, ms);
	/* What the client sent after its request is tunnel data already. */
	tunnel_from_client(ex);
	return UPSTREAM_NEXT_TUNNEL;
}

void
tunnel_from_client(struct exchange *ex)
{
	struct evbuffer *out = upstream_out(ex->up);
	size_t n;

	stream_read_body(ex->s, out, &n);
	ex->tunnel_last_us = ex_now_us();
	if (evbuffer_get_length(out) > STREAM_HIGH_WATER && !ex->client_paused) {
		ex->client_paused = true;
		stream_pause_body(ex->s, true);
	}
}

void
tunnel_from_upstream(struct exchange *ex, struct evbuffer *data, size_t len)
{
	ex->bytes_sent += len;
	stream_send_body(ex->s, data, len);
	ex->tunnel_last_us = ex_now_us();
	if (stream_pending(ex->s) > STREAM_HIGH_WATER && !ex->up_paused) {
		ex->up_paused = true;
		upstream_pause_read(ex->up, true);
	}
}

void
tunnel_idle(struct exchange *ex, bool client_side)
{
	uint64_t idle = ex_now_us() - ex->tunnel_last_us;

	if (idle < ex->route->tunnel_ms * 1000) {
		/* The other direction was active: the tunnel is not idle. */
		if (!client_side && !ex->up_paused)
			upstream_pause_read(ex->up, false);
		return;
	}
	ex_cut(ex, "tunnel idle");
}
