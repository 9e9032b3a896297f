/* unifork.h — the C SDK for `native` functions (DESIGN.md §8).
 *
 * A native function is a shared object (default name handler.so) in the
 * function's package (.tar.gz).  The agent inside the VM unpacks the
 * package into /fn, dlopen()s the object and calls:
 *
 *   int uf_init(void);                                          optional
 *       once, at deploy, BEFORE the VM is snapshotted: load models, build
 *       tables, open files here and every clone starts with them ready.
 *       Return 0; anything else fails the deploy (HTTP 422) with
 *       "uf_init returned N" and the tail of what it printed.  Init.env
 *       (the function's `env`) is already in the environment (getenv).
 *
 *   int uf_handle(const struct uf_request *req, struct uf_response *resp);
 *       once per invocation, in a fresh copy-on-write clone of that
 *       snapshot.  Write the body with uf_write()/uf_printf(), set
 *       resp->status (preset 200) and resp->content_type (preset "";
 *       "application/octet-stream" is sent then).  Return 0.  A non-zero
 *       return marks the call as failed: the client gets 502 with
 *       X-Function-Error: unhandled, and the body is dropped.
 *
 * Everything the handler writes to stdout/stderr during uf_handle (printf,
 * fprintf(stderr), write(1/2)) is returned as the call's logs (the last
 * 64 KiB; GET /v1/functions/{name}/logs).  Calls come one at a time, on
 * one thread; state kept in globals survives between calls that reach the
 * same warm clone, but never count on it: every clone starts from the
 * state uf_init left.
 *
 * Build (see functions/hello-c):
 *   cc -O2 -shared -fPIC -I functions/sdk -o handler.so handler.c
 *   tar -czf fn.tar.gz handler.so [other files...]
 * Link other shared libraries of the package with -Wl,-rpath,'$ORIGIN'.
 * The guest has glibc and the libraries of its initramfs, nothing else.
 *
 * A crash (SIGSEGV, abort) in a native handler takes its VM down: the
 * call fails with 502 and the clone is discarded.  The agent does not
 * interrupt a call that runs past its deadline (req->deadline_ms): the
 * host does, by killing the clone (504).
 *
 * Clones share everything uf_init left, including any PRNG it seeded
 * (srand(), a random state struct): every clone would draw the same
 * numbers.  Seed per call from getrandom(2) (the agent reseeds the kernel
 * CRNG in every clone before its first call) when randomness matters.
 */
#ifndef UNIFORK_H
#define UNIFORK_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes.  The agent refuses a handler built for
 * another version (the weak definition below travels in every object). */
#define UF_ABI_VERSION 1u
#ifndef UF_AGENT_SIDE
__attribute__((weak, visibility("default"))) const unsigned uf_abi_version = UF_ABI_VERSION;
#endif

/* Largest body the agent accepts (6 MiB); uf_write() fails past it. */
#define UF_MAX_BODY (6u << 20)

struct uf_request {
	const void *event;          /* the request body; NULL when len is 0 */
	size_t len;
	const char *call_id;        /* the X-Call-Id of this invocation */
	const char *content_type;   /* of the request; "" when none */
	uint64_t deadline_ms;       /* time budget from receipt, 0 = none */
};

struct uf_response {
	int status;                 /* HTTP status, 100..599; preset 200 */
	char content_type[128];     /* NUL-terminated; "" = application/octet-stream */
	/* Append to the body: 0, or -E2BIG past UF_MAX_BODY, -ENOMEM. */
	int (*write)(struct uf_response *resp, const void *data, size_t len);
	void *agent_private;        /* the agent's; do not touch */
};

int uf_init(void);
int uf_handle(const struct uf_request *req, struct uf_response *resp);

static inline int uf_write(struct uf_response *resp, const void *data, size_t len)
{
	return resp->write(resp, data, len);
}

static inline int uf_write_str(struct uf_response *resp, const char *s)
{
	return resp->write(resp, s, strlen(s));
}

static inline int uf_printf(struct uf_response *resp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int uf_printf(struct uf_response *resp, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return n;
	if ((size_t)n < sizeof small)
		return resp->write(resp, small, (size_t)n);
	char *big = (char *)malloc((size_t)n + 1);
	if (!big)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int rc = resp->write(resp, big, (size_t)n);
	free(big);
	return rc;
}

static inline void uf_set_content_type(struct uf_response *resp, const char *ct)
{
	snprintf(resp->content_type, sizeof resp->content_type, "%s", ct);
}

#ifdef __cplusplus
}
#endif

#endif
