/* spec.c — function specs: copies, JSON both ways, checks (contract in
 * spec.h). */
#include "runtimed/spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rt_spec_name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > GW_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = n[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			 (i > 0 && (ch == '_' || ch == '-'));
		if (!ok)
			return 0;
	}
	return 1;
}

static int env_name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > 128 || (n[0] >= '0' && n[0] <= '9'))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
		      (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return 0;
	return 1;
}

static int runtime_ok(const char *r)
{
	return strcmp(r, "native") == 0 || strcmp(r, "python") == 0 || strcmp(r, "exec") == 0;
}

static int handler_ok(const char *h)
{
	size_t len = strlen(h);
	if (len == 0 || len > GW_SPEC_HANDLER_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (h[i] < 0x21 || h[i] > 0x7e)
			return 0;
	return 1;
}

void rt_spec_free(struct rt_spec *s)
{
	for (size_t i = 0; i < s->n_env; i++) {
		free(s->env_name ? s->env_name[i] : NULL);
		free(s->env_value ? s->env_value[i] : NULL);
	}
	free(s->env_name);
	free(s->env_value);
	s->env_name = s->env_value = NULL;
	s->n_env = 0;
}

static int alloc_env(struct rt_spec *s, size_t n)
{
	s->n_env = 0;
	s->env_name = calloc(n ? n : 1, sizeof(char *));
	s->env_value = calloc(n ? n : 1, sizeof(char *));
	return s->env_name && s->env_value ? 0 : -ENOMEM;
}

static int add_env(struct rt_spec *s, const char *k, const char *v)
{
	char *a = strdup(k), *b = strdup(v);
	if (!a || !b) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	s->env_name[s->n_env] = a;
	s->env_value[s->n_env] = b;
	s->n_env++;
	return 0;
}

int rt_spec_from_gw(struct rt_spec *s, const struct gw_function_spec *g)
{
	memset(s, 0, sizeof(*s));
	if (!rt_spec_name_ok(g->name) || !runtime_ok(g->runtime_name) || !handler_ok(g->handler) ||
	    g->n_env > RT_ENV_MAX)
		return -EINVAL;
	snprintf(s->name, sizeof(s->name), "%s", g->name);
	snprintf(s->runtime, sizeof(s->runtime), "%s", g->runtime_name);
	snprintf(s->handler, sizeof(s->handler), "%s", g->handler);
	s->memory_mb = g->memory_mb;
	s->timeout_ms = g->timeout_ms;
	s->pool = (struct rt_pool){g->pool.min_warm, g->pool.max_instances, g->pool.idle_timeout_s};
	if (g->weight > GW_SPEC_WEIGHT_MAX || (g->tenant && !rt_spec_name_ok(g->tenant)))
		return -EINVAL;
	s->weight = g->weight ? g->weight : 1;  /* 0: not given */
	snprintf(s->tenant, sizeof(s->tenant), "%s", g->tenant ? g->tenant : "");
	int r = alloc_env(s, g->n_env);
	for (size_t i = 0; r == 0 && i < g->n_env; i++)
		r = add_env(s, g->env[i].name, g->env[i].value);
	if (r)
		rt_spec_free(s);
	s->created_unix = s->updated_unix = (int64_t)time(NULL);
	return r;
}

int rt_spec_copy(struct rt_spec *d, const struct rt_spec *src)
{
	*d = *src;
	int r = alloc_env(d, src->n_env);
	for (size_t i = 0; r == 0 && i < src->n_env; i++)
		r = add_env(d, src->env_name[i], src->env_value[i]);
	if (r)
		rt_spec_free(d);
	return r;
}

json_t *rt_pool_to_json(const struct rt_pool *p)
{
	return json_pack("{s:I, s:I, s:I}", "min_warm", (json_int_t)p->min_warm, "max_instances",
			 (json_int_t)p->max_instances, "idle_timeout_s", (json_int_t)p->idle_timeout_s);
}

json_t *rt_spec_to_json(const struct rt_spec *s)
{
	json_t *env = json_object();
	for (size_t i = 0; env && i < s->n_env; i++)
		if (json_object_set_new(env, s->env_name[i], json_string(s->env_value[i]))) {
			json_decref(env);
			env = NULL;
		}
	json_t *pool = rt_pool_to_json(&s->pool);
	if (!env || !pool) {
		json_decref(env);
		json_decref(pool);
		return NULL;
	}
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:I}", "name",
			      s->name, "runtime", s->runtime, "handler", s->handler, "memory_mb",
			      (json_int_t)s->memory_mb, "timeout_ms", (json_int_t)s->timeout_ms, "env",
			      env, "pool", pool, "weight", (json_int_t)s->weight, "version",
			      (json_int_t)s->version, "created", (json_int_t)s->created_unix,
			      "updated", (json_int_t)s->updated_unix);
	if (j && s->tenant[0] && json_object_set_new(j, "tenant", json_string(s->tenant))) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int get_u32(const json_t *j, const char *key, uint32_t lo, uint32_t hi, uint32_t *out,
		   char *err, size_t cap)
{
	json_t *v = json_object_get(j, key);
	json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
	if (n < (json_int_t)lo || n > (json_int_t)hi) {
		snprintf(err, cap, "%s must be an integer in %u..%u", key, lo, hi);
		return -EINVAL;
	}
	*out = (uint32_t)n;
	return 0;
}

int rt_spec_from_json(struct rt_spec *s, const json_t *j, char *err, size_t cap)
{
	memset(s, 0, sizeof(*s));
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *rt = json_string_value(json_object_get(j, "runtime"));
	const char *h = json_string_value(json_object_get(j, "handler"));
	const json_t *env = json_object_get(j, "env"), *pool = json_object_get(j, "pool");
	if (!json_is_object(j) || !name || !rt_spec_name_ok(name) || !rt || !runtime_ok(rt) || !h ||
	    !handler_ok(h) || !json_is_object(env) || !json_is_object(pool) ||
	    json_object_size(env) > RT_ENV_MAX) {
		snprintf(err, cap, "name, runtime, handler, env or pool missing or invalid");
		return -EINVAL;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->runtime, sizeof(s->runtime), "%s", rt);
	snprintf(s->handler, sizeof(s->handler), "%s", h);
	uint32_t ver = 0;
	if (get_u32(j, "memory_mb", GW_SPEC_MEMORY_MB_MIN, GW_SPEC_MEMORY_MB_MAX, &s->memory_mb, err, cap) ||
	    get_u32(j, "timeout_ms", GW_SPEC_TIMEOUT_MS_MIN, GW_SPEC_TIMEOUT_MS_MAX, &s->timeout_ms, err, cap) ||
	    get_u32(pool, "min_warm", 0, GW_SPEC_MAX_INSTANCES_MAX, &s->pool.min_warm, err, cap) ||
	    get_u32(pool, "max_instances", 1, GW_SPEC_MAX_INSTANCES_MAX, &s->pool.max_instances, err, cap) ||
	    get_u32(pool, "idle_timeout_s", 0, GW_SPEC_IDLE_TIMEOUT_MAX, &s->pool.idle_timeout_s, err, cap) ||
	    get_u32(j, "version", 0, UINT32_MAX, &ver, err, cap))
		return -EINVAL;
	if (s->pool.min_warm > s->pool.max_instances) {
		snprintf(err, cap, "pool.min_warm is over pool.max_instances");
		return -EINVAL;
	}
	s->version = ver;
	s->weight = 1;
	if (json_object_get(j, "weight") &&
	    get_u32(j, "weight", 1, GW_SPEC_WEIGHT_MAX, &s->weight, err, cap))
		return -EINVAL;
	const json_t *tenant = json_object_get(j, "tenant");
	if (tenant && (!json_is_string(tenant) || !rt_spec_name_ok(json_string_value(tenant)))) {
		snprintf(err, cap, "tenant must be a name");
		return -EINVAL;
	}
	snprintf(s->tenant, sizeof(s->tenant), "%s", tenant ? json_string_value(tenant) : "");
	s->created_unix = json_integer_value(json_object_get(j, "created"));
	s->updated_unix = json_integer_value(json_object_get(j, "updated"));
	if (alloc_env(s, json_object_size(env))) {
		snprintf(err, cap, "out of memory");
		return -ENOMEM;
	}
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)env, k, v) {
		const char *val = json_string_value(v);
		if (!env_name_ok(k) || !val || strlen(val) > 4096) {
			snprintf(err, cap, "env: bad variable %.64s", k);
			rt_spec_free(s);
			return -EINVAL;
		}
		if (add_env(s, k, val)) {
			snprintf(err, cap, "out of memory");
			rt_spec_free(s);
			return -ENOMEM;
		}
	}
	return 0;
}

char **rt_spec_env_strings(const struct rt_spec *s)
{
	char **e = calloc(s->n_env ? s->n_env : 1, sizeof(char *));
	for (size_t i = 0; e && i < s->n_env; i++)
		if (asprintf(&e[i], "%s=%s", s->env_name[i], s->env_value[i]) < 0) {
			e[i] = NULL;
			rt_spec_env_free(e, s->n_env);
			return NULL;
		}
	return e;
}

void rt_spec_env_free(char **env, size_t n)
{
	for (size_t i = 0; env && i < n; i++)
		free(env[i]);
	free(env);
}

const char *rt_spec_group(const struct rt_spec *s)
{
	return s->tenant[0] ? s->tenant : s->name;
}
