/* core.c — shared gateway state: configuration copy, call ids. */
#include "gateway/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gateway/call.h"

void gw_config_defaults(struct gw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:8080";
	cfg->max_header_bytes = 16 * 1024;
	cfg->max_invoke_body = 6 * 1024 * 1024;
	cfg->max_deploy_body = 64 * 1024 * 1024;
	cfg->max_control_body = 1024 * 1024;
	cfg->header_timeout_ms = 10000;
	cfg->body_timeout_ms = 60000;
	cfg->idle_timeout_ms = 60000;
	cfg->max_connections = 1024;
}

int gw_core_init(struct gw_core *c, const struct gw_config *cfg, const struct gw_ops *ops, void *ctx)
{
	struct gw_config d;

	memset(c, 0, sizeof(*c));
	gw_config_defaults(&d);
	c->cfg = *cfg;
#define DEFAULT(f) do { if (!c->cfg.f) c->cfg.f = d.f; } while (0)
	DEFAULT(listen);
	DEFAULT(max_header_bytes);
	DEFAULT(max_invoke_body);
	DEFAULT(max_deploy_body);
	DEFAULT(max_control_body);
	DEFAULT(header_timeout_ms);
	DEFAULT(body_timeout_ms);
	DEFAULT(idle_timeout_ms);
	DEFAULT(max_connections);
#undef DEFAULT
	c->listen = strdup(c->cfg.listen);
	c->token = strdup(cfg->token ? cfg->token : "");
	if (!c->listen || !c->token) {
		free(c->listen);
		free(c->token);
		return -ENOMEM;
	}
	c->cfg.listen = c->listen;
	c->cfg.token = c->token;
	c->ops = ops;
	c->ctx = ctx;
	gw_metrics_init(&c->metrics);
	if (getrandom(&c->id_key, sizeof(c->id_key), GRND_NONBLOCK) != (ssize_t)sizeof(c->id_key)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		c->id_key = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
	}
	int r = pthread_mutex_init(&c->lock, NULL);
	if (r) {
		free(c->listen);
		free(c->token);
		return -r;
	}
	return 0;
}

void gw_core_fini(struct gw_core *c)
{
	gw_calls_discard(c);
	pthread_mutex_destroy(&c->lock);
	free(c->listen);
	free(c->token);
	c->listen = c->token = NULL;
}

/* splitmix64's finaliser is a bijection of 64-bit values: distinct counters
 * give distinct ids, and the key makes them unguessable across restarts. */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void gw_core_call_id(struct gw_core *c, char out[GW_CALL_ID_LEN + 1])
{
	uint64_t v = mix(c->id_key + c->id_counter++);
	snprintf(out, GW_CALL_ID_LEN + 1, "%016llx", (unsigned long long)v);
}
