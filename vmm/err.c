/* err.c — thread-local error context for the VMM library. */
#include "vmm/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char vmm_errbuf[512];

int vmm_err(int ret, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vmm_errbuf, sizeof(vmm_errbuf), fmt, ap);
	va_end(ap);
	return ret;
}

int vmm_errno(int ret, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(vmm_errbuf, sizeof(vmm_errbuf), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(vmm_errbuf))
		snprintf(vmm_errbuf + n, sizeof(vmm_errbuf) - (size_t)n, ": %s", strerror(-ret));
	return ret;
}

const char *vmm_strerror(void)
{
	return vmm_errbuf[0] ? vmm_errbuf : "unknown error";
}
