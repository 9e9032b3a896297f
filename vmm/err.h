/* err.h — error context for the VMM library.
 *
 * Library calls return 0 or a negative errno.  At the place a failure is
 * detected they also record one line of context with vmm_err(); the caller
 * that handles the failure reads it with vmm_strerror() (thread-local, like
 * dlerror(): valid until the next vmm_err() on the same thread).  Context
 * may wrap the context below it: vmm_err(r, "clone: %s", vmm_strerror()).
 */
#ifndef VMM_ERR_H
#define VMM_ERR_H

/* Record context; returns `ret` so call sites can `return vmm_err(-EINVAL, ...)`. */
int vmm_err(int ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, appending ": strerror(-ret)". */
int vmm_errno(int ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *vmm_strerror(void);

#endif
