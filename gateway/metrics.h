/* metrics.h — the gateway's HTTP-level metrics and their Prometheus text
 * form: requests by route, method and status; request duration and body
 * size histograms by route; connections.  Owned by the server, updated and
 * rendered on the loop thread only (no locks).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"
#include "gateway/router.h"

#define GW_METRICS_DUR_BUCKETS  16
#define GW_METRICS_SIZE_BUCKETS 10
#define GW_METRICS_CODES        24      /* distinct (method, status) pairs kept per route */

struct gw_hist {
	uint64_t bucket[GW_METRICS_DUR_BUCKETS];        /* non-cumulative */
	uint64_t count;
	double sum;
};

struct gw_code_count {
	uint16_t status;
	uint8_t method;
	uint64_t count;
};

struct gw_route_metrics {
	struct gw_code_count codes[GW_METRICS_CODES];
	unsigned ncodes;
	uint64_t codes_other;                           /* pairs past the table */
	struct gw_hist duration;                        /* seconds */
	struct gw_hist req_bytes;
	struct gw_hist resp_bytes;
};

struct gw_metrics {
	struct gw_route_metrics route[GW_ROUTE_COUNT];
	uint64_t connections_total;
	uint64_t connections_active;
	uint64_t connections_refused;                   /* over max_connections */
	uint64_t malformed;                             /* 400/408/413/414/431 before routing */
};

void gw_metrics_init(struct gw_metrics *m);
/* One answered request. */
void gw_metrics_request(struct gw_metrics *m, enum gw_route r, enum gw_method method, int status,
			uint64_t duration_ns, size_t req_bytes, size_t resp_bytes);
/* Append the text exposition (HELP/TYPE lines, uf_http_* names). */
void gw_metrics_render(const struct gw_metrics *m, struct gw_buf *out);

/* One Prometheus histogram series with one label: cumulative _bucket lines
 * for each bound, then +Inf, _sum and _count.  `bucket` holds nb
 * non-cumulative counts (observations above the last bound are only in
 * count).  runtimed renders its per-function histograms with it too. */
void gw_prom_hist(struct gw_buf *out, const char *name, const char *label, const char *value,
		  const double *bounds, const uint64_t *bucket, unsigned nb, uint64_t count,
		  double sum);

#endif
