/* jail_worker.h — the jail of each uf-worker mode (jail_worker.c), on top
 * of jail.h.  Both do nothing when jail_wanted is false.  On success the
 * caller is the jailed child and its path arguments are replaced by the
 * absolute paths they are bound at (static buffers); -errno (vmm_err())
 * when the jail could not be entered. */
#ifndef UF_JAIL_WORKER_H
#define UF_JAIL_WORKER_H

#include <stddef.h>

/* serve: the template dir `*dir`, the socket `fd` kept. */
int worker_jail_serve(const char **dir, int fd) __attribute__((warn_unused_result));

/* build: each non-NULL `*paths_ro[i]` read-only (kernel, initrd, agent),
 * the templates dir and the output's directory read-write. */
int worker_jail_build(const char **paths_ro[], size_t n_ro, const char **templates,
		      const char **out, int fd) __attribute__((warn_unused_result));

#endif
