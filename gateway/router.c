/* router.c — method + path to route, function name and policy. */
#include "gateway/router.h"

#include <string.h>

bool gw_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > GW_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  (i > 0 && (c == '_' || c == '-'));
		if (!ok)
			return false;
	}
	return true;
}

static bool eq(const char *path, size_t len, const char *lit)
{
	size_t n = strlen(lit);
	return len == n && memcmp(path, lit, n) == 0;
}

static bool prefix(const char *path, size_t len, const char *lit)
{
	size_t n = strlen(lit);
	return len >= n && memcmp(path, lit, n) == 0;
}

/* One route's allowed methods; sets status 405 + Allow when `method` is not one. */
static void allow(struct gw_match *m, enum gw_method method, const char *allowed)
{
	const char *name = gw_method_name(method);
	size_t n = strlen(name);
	const char *p = allowed;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (method != GW_M_OTHER && len == n && memcmp(p, name, n) == 0)
			return;
		if (!end)
			break;
		p = end + 2;    /* ", " */
	}
	m->status = 405;
	m->allow = allowed;
}

/* "/v1/functions/{name}[/rest]": the name and what follows it. */
static bool split_function(const char *path, size_t len, size_t skip, struct gw_match *m,
			   const char **rest, size_t *rest_len)
{
	const char *name = path + skip;
	size_t left = len - skip;
	const char *slash = memchr(name, '/', left);
	size_t nlen = slash ? (size_t)(slash - name) : left;

	*rest = name + nlen;
	*rest_len = left - nlen;
	if (!gw_name_valid(name, nlen))
		return false;
	memcpy(m->name, name, nlen);
	m->name[nlen] = 0;
	return true;
}

void gw_route_match(enum gw_method method, const char *path, size_t len, struct gw_match *m)
{
	const char *rest;
	size_t rest_len;

	memset(m, 0, sizeof(*m));
	if (eq(path, len, "/healthz")) {
		m->route = GW_ROUTE_HEALTHZ;
		allow(m, method, "GET");
	} else if (eq(path, len, "/readyz")) {
		m->route = GW_ROUTE_READYZ;
		allow(m, method, "GET");
	} else if (eq(path, len, "/metrics")) {
		m->route = GW_ROUTE_METRICS;
		allow(m, method, "GET");
	} else if (eq(path, len, "/v1/info")) {
		m->route = GW_ROUTE_INFO;
		m->control = true;
		allow(m, method, "GET");
	} else if (eq(path, len, "/v1/functions")) {
		m->route = GW_ROUTE_FUNCTIONS;
		m->control = true;
		allow(m, method, "GET");
	} else if (prefix(path, len, "/v1/functions/")) {
		bool named = split_function(path, len, strlen("/v1/functions/"), m, &rest, &rest_len);
		if (rest_len == 0) {
			m->route = GW_ROUTE_FUNCTION;
			m->control = true;
			allow(m, method, "GET, PUT, DELETE");
			if (method == GW_M_PUT)
				m->body = GW_BODY_DEPLOY;
		} else if (eq(rest, rest_len, "/pool")) {
			m->route = GW_ROUTE_POOL;
			m->control = true;
			allow(m, method, "PUT");
		} else if (eq(rest, rest_len, "/logs")) {
			m->route = GW_ROUTE_LOGS;
			m->control = true;
			allow(m, method, "GET");
		} else if (eq(rest, rest_len, "/invoke")) {
			m->route = GW_ROUTE_INVOKE;
			m->invoke = true;
			m->body = GW_BODY_INVOKE;
			allow(m, method, "POST");
		} else {
			m->status = 404;
			return;
		}
		if (!named && m->status == 0)
			m->status = 400;
	} else if (prefix(path, len, "/function/")) {
		bool named = split_function(path, len, strlen("/function/"), m, &rest, &rest_len);
		if (rest_len != 0) {
			m->status = 404;
			return;
		}
		m->route = GW_ROUTE_INVOKE_ALIAS;
		m->invoke = true;
		m->body = GW_BODY_INVOKE;
		allow(m, method, "POST");
		if (!named && m->status == 0)
			m->status = 400;
	} else {
		m->status = 404;
	}
	if (m->status == 404)
		m->route = GW_ROUTE_NONE;
}

const char *gw_route_label(enum gw_route r)
{
	switch (r) {
	case GW_ROUTE_HEALTHZ: return "/healthz";
	case GW_ROUTE_READYZ: return "/readyz";
	case GW_ROUTE_METRICS: return "/metrics";
	case GW_ROUTE_INFO: return "/v1/info";
	case GW_ROUTE_FUNCTIONS: return "/v1/functions";
	case GW_ROUTE_FUNCTION: return "/v1/functions/{name}";
	case GW_ROUTE_POOL: return "/v1/functions/{name}/pool";
	case GW_ROUTE_LOGS: return "/v1/functions/{name}/logs";
	case GW_ROUTE_INVOKE: return "/v1/functions/{name}/invoke";
	case GW_ROUTE_INVOKE_ALIAS: return "/function/{name}";
	case GW_ROUTE_NONE:
	case GW_ROUTE_COUNT:
		break;
	}
	return "other";
}

const char *gw_method_name(enum gw_method m)
{
	switch (m) {
	case GW_M_GET: return "GET";
	case GW_M_HEAD: return "HEAD";
	case GW_M_POST: return "POST";
	case GW_M_PUT: return "PUT";
	case GW_M_DELETE: return "DELETE";
	case GW_M_OTHER: break;
	}
	return "OTHER";
}
