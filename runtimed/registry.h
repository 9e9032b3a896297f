/* registry.h — the function registry on disk, under the data directory:
 *
 *   DATA/functions/NAME/spec.json      the spec (spec.h), written atomically
 *   DATA/functions/NAME/code.tar.gz    the package as deployed
 *   DATA/functions/NAME/env            Init environment, KEY=VALUE\0 ...
 *   DATA/functions/NAME/template/      the function template (a snapshot)
 *   DATA/templates/                    cached base and runtime templates
 *
 * A deploy writes a staging directory (DATA/functions/.staging-NAME-XXXXXX)
 * and, once its template is built, swaps it in with one rename (an existing
 * function is exchanged atomically, RENAME_EXCHANGE, then removed), so a
 * crash at any point leaves either the old function or the new one.  On a
 * filesystem without RENAME_EXCHANGE (the KVM sandbox's 9p shares) the old
 * directory is first renamed to NAME.old-XXXXXX; rt_reg_init() moves such a
 * directory back when a crash left no NAME.  A template rebuilt in place
 * goes to NAME/template.new and is swapped in the same way.  Leftover
 * staging and removed directories are cleaned at start.  Workers
 * keep their template files open, so swapping or removing a directory never
 * pulls memory from under a running clone.
 *
 * All calls are synchronous file operations on small files (templates are
 * written by uf-worker, not here).  0 or -errno with vmm_strerror().
 */
#ifndef RT_REGISTRY_H
#define RT_REGISTRY_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "runtimed/spec.h"

struct rt_registry {
	char root[PATH_MAX];            /* DATA/functions */
	char templates[PATH_MAX];       /* DATA/templates */
};

int rt_reg_init(struct rt_registry *r, const char *data) __attribute__((warn_unused_result));

/* DATA/functions/NAME[/leaf] into out.  -ENAMETOOLONG if it does not fit. */
int rt_reg_path(const struct rt_registry *r, const char *name, const char *leaf, char *out,
		size_t cap) __attribute__((warn_unused_result));

/* A fresh staging directory holding spec.json, code.tar.gz and env; its
 * path goes to out (PATH_MAX).  On failure nothing is left behind. */
int rt_reg_stage(const struct rt_registry *r, const struct rt_spec *s, const void *code,
		 size_t code_len, char *out) __attribute__((warn_unused_result));
/* Move a built staging directory into place as function `name`. */
int rt_reg_commit(const struct rt_registry *r, const char *name, const char *staging)
	__attribute__((warn_unused_result));
/* Move directory src to dst, replacing a dst that exists (see above). */
int rt_swap_dir(const char *src, const char *dst) __attribute__((warn_unused_result));
/* Remove a staging (or any) directory tree. */
void rt_reg_discard(const char *dir);
/* Rewrite NAME/spec.json atomically (pool changes). */
int rt_reg_save_spec(const struct rt_registry *r, const struct rt_spec *s)
	__attribute__((warn_unused_result));
/* Remove function `name` from disk. */
int rt_reg_remove(const struct rt_registry *r, const char *name) __attribute__((warn_unused_result));

/* Call fn for every function found (spec.json valid, code present; fn takes
 * over *s and frees it with rt_spec_free), in no
 * particular order; damaged entries are reported on stderr and skipped.
 * Returns the number found or -errno. */
int rt_reg_load(const struct rt_registry *r, void (*fn)(void *arg, struct rt_spec *s), void *arg);

/* Write `len` bytes to dir/leaf through a temporary file + fsync + rename. */
int rt_write_atomic(const char *dir, const char *leaf, const void *p, size_t len)
	__attribute__((warn_unused_result));

#endif
