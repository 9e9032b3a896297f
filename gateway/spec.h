/* spec.h — validation of the JSON bodies of the control plane: the function
 * spec of PUT /v1/functions/{name} and the pool knobs of
 * PUT /v1/functions/{name}/pool.  Unknown fields, wrong types, out-of-range
 * numbers, bad base64 and bad env names are refused with a one-line reason
 * (answered 400).
 *
 * Deploy JSON: {"runtime": "native"|"python"|"exec" (required),
 *   "handler": str, "code": base64 str (required, non-empty),
 *   "memory_mb": int, "timeout_ms": int, "env": {str: str},
 *   "pool": {"min_warm": int, "max_instances": int, "idle_timeout_s": int},
 *   "weight": int 1..1000 (default 1), "tenant": name (default: none),
 *   "name": str (optional, must equal the path's name)}
 * Pool update JSON: the pool fields and "weight", each optional, at least one.
 */
#ifndef GW_SPEC_H
#define GW_SPEC_H

#include <jansson.h>
#include <stddef.h>

#include "gateway/backend.h"

/* A parsed spec and the memory behind it (owner: whoever parsed it). */
struct gw_spec {
	struct gw_function_spec fs;     /* points into the members below */
	json_t *root;                   /* strings of fs live here */
	uint8_t *code;                  /* decoded package */
	struct gw_env_var *env;
	char name[GW_NAME_MAX + 1];
};

/* Parse `json` (len bytes) for function `name`.  0, or -EINVAL with the
 * reason in err (errlen bytes), or -ENOMEM.  On failure nothing is held. */
int gw_spec_parse(struct gw_spec *s, const char *name, const void *json, size_t len,
		  char *err, size_t errlen) __attribute__((warn_unused_result));
void gw_spec_free(struct gw_spec *s);

/* Parse a pool update (fields optional, at least one). */
int gw_pool_update_parse(struct gw_pool_update *u, const void *json, size_t len,
			 char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
