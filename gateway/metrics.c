/* metrics.c — HTTP metrics registry and Prometheus text rendering. */
#include "gateway/metrics.h"

#include <string.h>

static const double dur_bounds[GW_METRICS_DUR_BUCKETS - 1] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
static const double size_bounds[GW_METRICS_SIZE_BUCKETS - 1] = {
	64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 6291456,
};

void gw_metrics_init(struct gw_metrics *m)
{
	memset(m, 0, sizeof(*m));
}

static void observe(struct gw_hist *h, const double *bounds, unsigned nb, double v)
{
	unsigned i = 0;
	while (i < nb && v > bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += v;
}

void gw_metrics_request(struct gw_metrics *m, enum gw_route r, enum gw_method method, int status,
			uint64_t duration_ns, size_t req_bytes, size_t resp_bytes)
{
	if ((unsigned)r >= GW_ROUTE_COUNT)
		r = GW_ROUTE_NONE;
	struct gw_route_metrics *rm = &m->route[r];
	unsigned i;
	for (i = 0; i < rm->ncodes; i++)
		if (rm->codes[i].status == status && rm->codes[i].method == method)
			break;
	if (i == rm->ncodes) {
		if (rm->ncodes < GW_METRICS_CODES) {
			rm->codes[i] = (struct gw_code_count){.status = (uint16_t)status, .method = (uint8_t)method};
			rm->ncodes++;
		} else {
			rm->codes_other++;
			i = GW_METRICS_CODES;
		}
	}
	if (i < GW_METRICS_CODES)
		rm->codes[i].count++;
	observe(&rm->duration, dur_bounds, GW_METRICS_DUR_BUCKETS - 1, (double)duration_ns / 1e9);
	observe(&rm->req_bytes, size_bounds, GW_METRICS_SIZE_BUCKETS - 1, (double)req_bytes);
	observe(&rm->resp_bytes, size_bounds, GW_METRICS_SIZE_BUCKETS - 1, (double)resp_bytes);
}

void gw_prom_hist(struct gw_buf *out, const char *name, const char *label, const char *value,
		  const double *bounds, const uint64_t *bucket, unsigned nb, uint64_t count,
		  double sum)
{
	uint64_t cum = 0;
	for (unsigned i = 0; i < nb; i++) {
		cum += bucket[i];
		gw_buf_printf(out, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value, bounds[i],
			      (unsigned long long)cum);
	}
	gw_buf_printf(out, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
		      (unsigned long long)count);
	gw_buf_printf(out, "%s_sum{%s=\"%s\"} %.9g\n", name, label, value, sum);
	gw_buf_printf(out, "%s_count{%s=\"%s\"} %llu\n", name, label, value, (unsigned long long)count);
}

void gw_metrics_render(const struct gw_metrics *m, struct gw_buf *out)
{
	gw_buf_puts(out, "# HELP uf_http_requests_total HTTP requests answered, by route, method and status.\n"
			 "# TYPE uf_http_requests_total counter\n");
	for (unsigned r = 0; r < GW_ROUTE_COUNT; r++) {
		const struct gw_route_metrics *rm = &m->route[r];
		const char *label = gw_route_label((enum gw_route)r);
		for (unsigned i = 0; i < rm->ncodes; i++)
			gw_buf_printf(out, "uf_http_requests_total{route=\"%s\",method=\"%s\",code=\"%u\"} %llu\n",
				      label, gw_method_name((enum gw_method)rm->codes[i].method),
				      rm->codes[i].status, (unsigned long long)rm->codes[i].count);
		if (rm->codes_other)
			gw_buf_printf(out, "uf_http_requests_total{route=\"%s\",method=\"OTHER\",code=\"other\"} %llu\n",
				      label, (unsigned long long)rm->codes_other);
	}
	static const struct {
		const char *name, *help;
		size_t off;
		const double *bounds;
		unsigned nb;
	} hists[] = {
		{"uf_http_request_duration_seconds", "Time from a request's first byte to its response.",
		 offsetof(struct gw_route_metrics, duration), dur_bounds, GW_METRICS_DUR_BUCKETS - 1},
		{"uf_http_request_body_bytes", "Request body sizes.",
		 offsetof(struct gw_route_metrics, req_bytes), size_bounds, GW_METRICS_SIZE_BUCKETS - 1},
		{"uf_http_response_body_bytes", "Response body sizes.",
		 offsetof(struct gw_route_metrics, resp_bytes), size_bounds, GW_METRICS_SIZE_BUCKETS - 1},
	};
	for (unsigned k = 0; k < sizeof(hists) / sizeof(hists[0]); k++) {
		gw_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", hists[k].name, hists[k].help,
			      hists[k].name);
		for (unsigned r = 0; r < GW_ROUTE_COUNT; r++) {
			const struct gw_hist *h =
				(const struct gw_hist *)((const char *)&m->route[r] + hists[k].off);
			if (h->count)
				gw_prom_hist(out, hists[k].name, "route",
					     gw_route_label((enum gw_route)r), hists[k].bounds,
					     h->bucket, hists[k].nb, h->count, h->sum);
		}
	}
	gw_buf_printf(out,
		      "# HELP uf_http_connections_total Connections accepted.\n"
		      "# TYPE uf_http_connections_total counter\n"
		      "uf_http_connections_total %llu\n"
		      "# HELP uf_http_connections_active Connections open now.\n"
		      "# TYPE uf_http_connections_active gauge\n"
		      "uf_http_connections_active %llu\n"
		      "# HELP uf_http_connections_refused_total Connections answered 503 over max_connections.\n"
		      "# TYPE uf_http_connections_refused_total counter\n"
		      "uf_http_connections_refused_total %llu\n"
		      "# HELP uf_http_malformed_requests_total Requests refused while being read (400, 408, 413, 414, 431).\n"
		      "# TYPE uf_http_malformed_requests_total counter\n"
		      "uf_http_malformed_requests_total %llu\n",
		      (unsigned long long)m->connections_total, (unsigned long long)m->connections_active,
		      (unsigned long long)m->connections_refused, (unsigned long long)m->malformed);
}
