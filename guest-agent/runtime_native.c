/* runtime_native.c — the `native` runtime: the package's shared object
 * (Init.handler, default handler.so), built against functions/sdk/unifork.h,
 * is dlopen()ed at Init, its uf_init() hook runs before the snapshot, and
 * uf_handle() runs once per call inside the agent (the dispatcher captures
 * fds 1 and 2 around both, runtime.h). */
#define UF_AGENT_SIDE
#include "functions/sdk/unifork.h"
#include "guest-agent/runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/agent_msg.h"

_Static_assert(UF_MAX_BODY == UF_AGENT_MAX_PAYLOAD, "the SDK's body limit is the protocol's");

typedef int (*uf_init_fn)(void);
typedef int (*uf_handle_fn)(const struct uf_request *, struct uf_response *);

static void *dl;                 /* the loaded handler, NULL before load */
static uf_handle_fn handle;

struct body {
	uint8_t *p;
	size_t len, cap;
};

static int body_write(struct uf_response *resp, const void *data, size_t len)
{
	struct body *b = resp->agent_private;
	if (!b || (len && !data))
		return -EINVAL;
	if (len > UF_MAX_BODY - b->len)
		return -E2BIG;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		if (cap > UF_MAX_BODY)
			cap = UF_MAX_BODY;
		uint8_t *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static void unload(void)
{
	if (dl)
		dlclose(dl);
	dl = NULL;
	handle = NULL;
}

static int native_load(const struct agent_fn *fn, char *err, size_t errlen)
{
	const char *h = fn->handler[0] ? fn->handler : "handler.so";
	char path[4096];
	struct stat st;

	if (dl) {
		snprintf(err, errlen, "native: a function is already loaded");
		return -EBUSY;
	}
	if (agent_runtime_check_relpath(h) < 0) {
		snprintf(err, errlen, "native: handler '%.200s' must be a relative path inside the "
			 "package", h);
		return -EINVAL;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/%s", fn->dir, h) >= sizeof path) {
		snprintf(err, errlen, "native: handler path too long");
		return -ENAMETOOLONG;
	}
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "native: handler %s is not a file in the package", h);
		return -ENOENT;
	}
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *e = dlerror();
		snprintf(err, errlen, "native: cannot load %s: %s", h, e ? e : "dlopen failed");
		return -ENOEXEC;
	}
	const unsigned *abi = dlsym(dl, "uf_abi_version");
	if (abi && *abi != UF_ABI_VERSION) {
		snprintf(err, errlen, "native: %s was built for SDK ABI %u, the agent speaks %u", h,
			 *abi, UF_ABI_VERSION);
		unload();
		return -ENOEXEC;
	}
	handle = (uf_handle_fn)dlsym(dl, "uf_handle");
	if (!handle) {
		snprintf(err, errlen, "native: %s does not export uf_handle()", h);
		unload();
		return -ENOEXEC;
	}
	uf_init_fn init = (uf_init_fn)dlsym(dl, "uf_init");
	if (init) {
		int rc = init();
		if (rc != 0) {
			snprintf(err, errlen, "native: uf_init returned %d", rc);
			unload();
			return -ECANCELED;
		}
	}
	return 0;
}

static int native_invoke(const struct agent_call *call, struct agent_reply *out)
{
	struct body b = { 0 };
	struct uf_response resp = { .status = 200, .write = body_write, .agent_private = &b };
	struct uf_request req = {
		.event = call->len ? call->event : NULL, .len = call->len,
		.call_id = call->call_id, .content_type = call->content_type,
		.deadline_ms = call->deadline_ms,
	};

	if (!handle) {
		snprintf(out->error, sizeof out->error, "native: no function loaded");
		return -ENOENT;
	}
	int rc = handle(&req, &resp);
	out->body = b.p;
	out->body_len = b.len;
	out->status = resp.status >= 100 && resp.status <= 599 ? (uint32_t)resp.status : 0;
	resp.content_type[sizeof resp.content_type - 1] = '\0';
	snprintf(out->content_type, sizeof out->content_type, "%s",
		 resp.content_type[0] ? resp.content_type : "application/octet-stream");
	if (rc != 0) {
		snprintf(out->error, sizeof out->error, "uf_handle returned %d", rc);
		return -EIO;
	}
	return 0;
}

const struct agent_runtime agent_runtime_native = {
	.abi = AGENT_RUNTIME_ABI,
	.name = "native",
	.capture_fds = 1,
	.warm = NULL,
	.load = native_load,
	.invoke = native_invoke,
};
