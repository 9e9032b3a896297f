/* spec.c — deploy spec and pool update validation (jansson). */
#include "gateway/spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/base64.h"
#include "gateway/router.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Parse an object body; NULL with the reason in err. */
static json_t *load_object(const void *json, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		fail(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		fail(err, errlen, "the body must be a JSON object");
		return NULL;
	}
	return root;
}

/* An integer field in [min, max]; absent leaves *out. */
static int get_uint(json_t *obj, const char *key, uint32_t min, uint32_t max, uint32_t *out,
		    bool *present, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	if (present)
		*present = v != NULL;
	if (!v)
		return 0;
	if (!json_is_integer(v))
		return fail(err, errlen, "\"%s\" must be an integer", key);
	json_int_t n = json_integer_value(v);
	if (n < (json_int_t)min || n > (json_int_t)max)
		return fail(err, errlen, "\"%s\" must be in [%u, %u]", key, min, max);
	*out = (uint32_t)n;
	return 0;
}

/* Every key of obj is one of `allowed` (NULL-terminated). */
static int only_keys(json_t *obj, const char *const *allowed, const char *what, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			ok = ok || !strcmp(key, *a);
		if (!ok) {
			char safe[40];
			size_t i;
			for (i = 0; key[i] && i < sizeof(safe) - 1; i++)
				safe[i] = (key[i] >= 0x20 && key[i] < 0x7f && key[i] != '"') ? key[i] : '?';
			safe[i] = 0;
			return fail(err, errlen, "unknown field \"%s\" in %s", safe, what);
		}
	}
	return 0;
}

static const char *const pool_keys[] = {"min_warm", "max_instances", "idle_timeout_s", NULL};
static const char *const pool_put_keys[] = {"min_warm", "max_instances", "idle_timeout_s",
					    "weight", NULL};

static int parse_pool(json_t *obj, struct gw_pool_update *u, bool put, char *err, size_t errlen)
{
	if (!json_is_object(obj))
		return fail(err, errlen, "\"pool\" must be an object");
	if (only_keys(obj, put ? pool_put_keys : pool_keys, "pool", err, errlen) ||
	    (put && get_uint(obj, "weight", 1, GW_SPEC_WEIGHT_MAX, &u->weight, &u->has_weight, err,
			     errlen)) ||
	    get_uint(obj, "min_warm", 0, GW_SPEC_MAX_INSTANCES_MAX, &u->pool.min_warm,
		     &u->has_min_warm, err, errlen) ||
	    get_uint(obj, "max_instances", 1, GW_SPEC_MAX_INSTANCES_MAX, &u->pool.max_instances,
		     &u->has_max_instances, err, errlen) ||
	    get_uint(obj, "idle_timeout_s", 0, GW_SPEC_IDLE_TIMEOUT_MAX, &u->pool.idle_timeout_s,
		     &u->has_idle_timeout_s, err, errlen))
		return -EINVAL;
	if (u->has_min_warm && u->has_max_instances && u->pool.min_warm > u->pool.max_instances)
		return fail(err, errlen, "\"min_warm\" must not exceed \"max_instances\"");
	return 0;
}

int gw_pool_update_parse(struct gw_pool_update *u, const void *json, size_t len, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	json_t *root = load_object(json, len, err, errlen);
	if (!root)
		return -EINVAL;
	int r = parse_pool(root, u, true, err, errlen);
	if (!r && !u->has_min_warm && !u->has_max_instances && !u->has_idle_timeout_s &&
	    !u->has_weight)
		r = fail(err, errlen,
			 "no pool field given (min_warm, max_instances, idle_timeout_s, weight)");
	json_decref(root);
	return r;
}

static bool env_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static int parse_env(struct gw_spec *s, json_t *env, char *err, size_t errlen)
{
	if (!json_is_object(env))
		return fail(err, errlen, "\"env\" must be an object of strings");
	size_t n = json_object_size(env);
	if (n > GW_SPEC_ENV_MAX)
		return fail(err, errlen, "\"env\" has more than %u variables", GW_SPEC_ENV_MAX);
	s->env = calloc(n ? n : 1, sizeof(*s->env));
	if (!s->env)
		return -ENOMEM;
	const char *key;
	json_t *v;
	size_t i = 0;
	json_object_foreach(env, key, v) {
		if (!env_name_ok(key))
			return fail(err, errlen, "bad env name (want [A-Za-z_][A-Za-z0-9_]*, at most 128 bytes)");
		if (!json_is_string(v))
			return fail(err, errlen, "env value of %s must be a string", key);
		size_t vlen = json_string_length(v);
		if (vlen > 4096 || strlen(json_string_value(v)) != vlen)
			return fail(err, errlen, "env value of %s: NUL inside or over 4096 bytes", key);
		s->env[i].name = key;
		s->env[i].value = json_string_value(v);
		i++;
	}
	s->fs.env = s->env;
	s->fs.n_env = i;
	return 0;
}

static int parse_handler(struct gw_spec *s, json_t *h, char *err, size_t errlen)
{
	static const char *const defaults[] = {"handler.so", "handler.handle", "handler"};
	s->fs.handler = defaults[s->fs.runtime];
	if (!h)
		return 0;
	if (!json_is_string(h))
		return fail(err, errlen, "\"handler\" must be a string");
	const char *v = json_string_value(h);
	size_t n = json_string_length(h);
	if (n == 0 || n > GW_SPEC_HANDLER_MAX)
		return fail(err, errlen, "\"handler\" must have 1 to %u bytes", GW_SPEC_HANDLER_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return fail(err, errlen, "\"handler\" must be printable ASCII");
	s->fs.handler = v;
	return 0;
}

static int parse_code(struct gw_spec *s, json_t *c, char *err, size_t errlen)
{
	if (!c)
		return fail(err, errlen, "\"code\" (base64 of a .tar.gz) is required");
	if (!json_is_string(c))
		return fail(err, errlen, "\"code\" must be a base64 string");
	size_t n = json_string_length(c);
	s->code = malloc(gw_base64_max_decoded(n));
	if (!s->code)
		return -ENOMEM;
	if (gw_base64_decode(json_string_value(c), n, s->code, &s->fs.code_len))
		return fail(err, errlen, "\"code\" is not valid base64");
	if (s->fs.code_len == 0)
		return fail(err, errlen, "\"code\" is empty");
	s->fs.code = s->code;
	return 0;
}

static int parse_tenant(struct gw_function_spec *fs, json_t *t, char *err, size_t errlen)
{
	fs->tenant = NULL;
	if (!t)
		return 0;
	if (!json_is_string(t) || !gw_name_valid(json_string_value(t), json_string_length(t)))
		return fail(err, errlen, "\"tenant\" must match [a-z0-9][a-z0-9_-]{0,62}");
	fs->tenant = json_string_value(t);
	return 0;
}

static const char *const spec_keys[] = {"name", "runtime", "handler", "code", "memory_mb",
					"timeout_ms", "env", "pool", "weight", "tenant", NULL};

static int parse_fields(struct gw_spec *s, json_t *root, char *err, size_t errlen)
{
	static const char *const runtimes[] = {"native", "python", "exec"};
	struct gw_function_spec *fs = &s->fs;

	if (only_keys(root, spec_keys, "the function spec", err, errlen))
		return -EINVAL;
	json_t *name = json_object_get(root, "name");
	if (name && (!json_is_string(name) || strcmp(json_string_value(name), s->name) != 0))
		return fail(err, errlen, "\"name\" in the body differs from the name in the path");
	json_t *rt = json_object_get(root, "runtime");
	if (!rt || !json_is_string(rt))
		return fail(err, errlen, "\"runtime\" is required: native, python or exec");
	size_t i;
	for (i = 0; i < 3; i++)
		if (!strcmp(json_string_value(rt), runtimes[i]))
			break;
	if (i == 3)
		return fail(err, errlen, "\"runtime\" must be native, python or exec");
	fs->runtime = (enum gw_runtime)i;
	fs->runtime_name = runtimes[i];

	fs->memory_mb = 128;
	fs->timeout_ms = 3000;
	fs->pool = (struct gw_pool_spec){.min_warm = 0, .max_instances = 64, .idle_timeout_s = 300};
	fs->weight = 1;
	int r;
	if ((r = parse_tenant(fs, json_object_get(root, "tenant"), err, errlen)) ||
	    (r = get_uint(root, "weight", 1, GW_SPEC_WEIGHT_MAX, &fs->weight, NULL, err, errlen)) ||
	    (r = parse_handler(s, json_object_get(root, "handler"), err, errlen)) ||
	    (r = get_uint(root, "memory_mb", GW_SPEC_MEMORY_MB_MIN, GW_SPEC_MEMORY_MB_MAX,
			  &fs->memory_mb, NULL, err, errlen)) ||
	    (r = get_uint(root, "timeout_ms", GW_SPEC_TIMEOUT_MS_MIN, GW_SPEC_TIMEOUT_MS_MAX,
			  &fs->timeout_ms, NULL, err, errlen)))
		return r;
	json_t *env = json_object_get(root, "env");
	if (env && (r = parse_env(s, env, err, errlen)))
		return r;
	json_t *pool = json_object_get(root, "pool");
	if (pool) {
		struct gw_pool_update u = {.pool = fs->pool};
		if ((r = parse_pool(pool, &u, false, err, errlen)))
			return r;
		fs->pool = u.pool;
		if (fs->pool.min_warm > fs->pool.max_instances)
			return fail(err, errlen, "\"min_warm\" must not exceed \"max_instances\"");
	}
	return parse_code(s, json_object_get(root, "code"), err, errlen);
}

int gw_spec_parse(struct gw_spec *s, const char *name, const void *json, size_t len,
		  char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (!gw_name_valid(name, strlen(name)))
		return fail(err, errlen, "invalid function name");
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->fs.name = s->name;
	s->root = load_object(json, len, err, errlen);
	if (!s->root)
		return -EINVAL;
	int r = parse_fields(s, s->root, err, errlen);
	if (r) {
		if (r == -ENOMEM)
			fail(err, errlen, "out of memory");
		gw_spec_free(s);
	}
	return r;
}

void gw_spec_free(struct gw_spec *s)
{
	json_decref(s->root);
	free(s->code);
	free(s->env);
	memset(s, 0, sizeof(*s));
}
