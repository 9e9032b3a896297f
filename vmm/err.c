/* err.c — thread-local error context for the VMM library. */
#include "vmm/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static __thread char vmm_errbuf[512];

/* Formats into a scratch buffer first: callers wrap the context they got,
 * vmm_err(r, "clone: %s", vmm_strerror()), and vsnprintf() into the buffer
 * it reads from is undefined (it garbled "post-clone fixup" into
 * "clone: clone: one fixup"). */
static void record(int ret, bool with_errno, const char *fmt, va_list ap)
{
	char tmp[sizeof(vmm_errbuf)];
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	if (n < 0)
		snprintf(tmp, sizeof(tmp), "(unformattable error context)");
	else if (with_errno && (size_t)n < sizeof(tmp))
		snprintf(tmp + n, sizeof(tmp) - (size_t)n, ": %s", strerror(-ret));
	memcpy(vmm_errbuf, tmp, sizeof(vmm_errbuf));
}

int vmm_err(int ret, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(ret, false, fmt, ap);
	va_end(ap);
	return ret;
}

int vmm_errno(int ret, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(ret, true, fmt, ap);
	va_end(ap);
	return ret;
}

const char *vmm_strerror(void)
{
	return vmm_errbuf[0] ? vmm_errbuf : "unknown error";
}
