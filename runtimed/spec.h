/* spec.h — a function's specification as runtimed keeps it: an owned copy
 * of what was deployed (gateway/backend.h's gw_function_spec minus the
 * code), its JSON form on disk (spec.json) and in API answers, and its
 * checks.  JSON read back from disk is checked like a request: a damaged
 * spec.json is refused, never trusted.
 */
#ifndef RT_SPEC_H
#define RT_SPEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/backend.h"

#define RT_RUNTIME_MAX 16
#define RT_ENV_MAX     GW_SPEC_ENV_MAX

struct rt_pool {
	uint32_t min_warm, max_instances, idle_timeout_s;
};

struct rt_spec {
	char name[GW_NAME_MAX + 1];
	char runtime[RT_RUNTIME_MAX];           /* native, python, exec */
	char handler[GW_SPEC_HANDLER_MAX + 1];
	uint32_t memory_mb, timeout_ms;
	size_t n_env;
	char **env_name, **env_value;           /* n_env each, owned */
	struct rt_pool pool;
	uint32_t weight;                        /* 1..GW_SPEC_WEIGHT_MAX */
	char tenant[GW_NAME_MAX + 1];           /* "" = none: its own group */
	uint64_t version;                       /* deploys of this name so far */
	int64_t created_unix, updated_unix;     /* seconds */
};

/* Copy a gateway spec (the code is not kept here).  0 or -ENOMEM/-EINVAL. */
int rt_spec_from_gw(struct rt_spec *s, const struct gw_function_spec *g) __attribute__((warn_unused_result));
void rt_spec_free(struct rt_spec *s);
/* Deep copy; 0 or -ENOMEM. */
int rt_spec_copy(struct rt_spec *dst, const struct rt_spec *src) __attribute__((warn_unused_result));

/* A name the gateway would accept: [a-z0-9][a-z0-9_-]{0,62}. */
int rt_spec_name_ok(const char *name);
/* The scheduling group: the tenant when set, else the name. */
const char *rt_spec_group(const struct rt_spec *s);

/* {"name", "runtime", "handler", "memory_mb", "timeout_ms", "env": {..},
 *  "pool": {...}, "weight", "tenant" (when set), "version", "created",
 *  "updated"}; NULL on ENOMEM.  Read back, "weight" and "tenant" are
 * optional (specs saved before they existed: 1, none). */
json_t *rt_spec_to_json(const struct rt_spec *s);
json_t *rt_pool_to_json(const struct rt_pool *p);
/* Parse and check; 0 or -EINVAL with a reason in err (cap bytes). */
int rt_spec_from_json(struct rt_spec *s, const json_t *j, char *err, size_t cap)
	__attribute__((warn_unused_result));

/* "KEY=VALUE" strings for the agent's Init (malloc'd array of malloc'd
 * strings, n_env of them; free with rt_spec_env_free). */
char **rt_spec_env_strings(const struct rt_spec *s);
void rt_spec_env_free(char **env, size_t n);

#endif
