/* runtime.c — the runtime dispatcher (runtime.h): echo until an Init
 * names a runtime, then that runtime's warm-up, the package into fn_dir,
 * the handler's load, and every call, with stdout/stderr captured. */
#include "guest-agent/runtime.h"
#include "guest-agent/runtime_capture.h"
#include "guest-agent/runtime_pkg.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/agent_msg.h"

#define LOAD_LOG_TAIL 1536u      /* bytes of a failed load's output in its error */

static struct agent_runtime_config cfg = {
	.fn_dir = AGENT_FN_DIR,
	.mount_tmpfs = 1,
	.python_so = AGENT_PYTHON_SO,
	.python_stdlib = AGENT_PYTHON_STDLIB,
	.exec_ready_ms = AGENT_EXEC_READY_MS,
};

static const struct agent_runtime *cur;        /* NULL: echo */
static enum agent_handler_state state = AGENT_HANDLER_READY;
static int accepts_init = 1;
static const struct agent_runtime *warmed[3];  /* runtimes whose warm-up ran */
static const struct agent_runtime *python;     /* from the shared object, once loaded */
static struct agent_capture cap = AGENT_CAPTURE_INIT;
static int fn_mounted;

void agent_runtime_configure(const struct agent_runtime_config *c)
{
	cfg = *c;
	if (!cfg.exec_ready_ms)
		cfg.exec_ready_ms = AGENT_EXEC_READY_MS;
}

int agent_runtime_check_relpath(const char *p)
{
	size_t len = strlen(p);
	if (len == 0 || len > 255 || p[0] == '/')
		return -EINVAL;
	for (const char *c = p; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return -EINVAL;
		c += n;
		if (*c == '/' && *++c == '\0')
			return -EINVAL;  /* trailing slash */
	}
	return 0;
}

static const struct agent_runtime *load_python(char *err, size_t errlen)
{
	if (python)
		return python;
	void *h = dlopen(cfg.python_so, RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(err, errlen, "python: the python runtime is not in this guest (boot the "
			 "python initramfs): %s", e ? e : cfg.python_so);
		return NULL;
	}
	const struct agent_runtime *(*get)(void) =
		(const struct agent_runtime *(*)(void))dlsym(h, AGENT_PYTHON_ENTRY);
	const struct agent_runtime *rt = get ? get() : NULL;
	if (!rt || rt->abi != AGENT_RUNTIME_ABI || !rt->load || !rt->invoke) {
		snprintf(err, errlen, "python: %s is not a runtime of this agent (ABI %u)",
			 cfg.python_so, AGENT_RUNTIME_ABI);
		dlclose(h);
		return NULL;
	}
	python = rt;   /* h stays open for the agent's life: CPython cannot unload */
	return rt;
}

static const struct agent_runtime *find(const char *name, char *err, size_t errlen)
{
	if (strcmp(name, "native") == 0)
		return &agent_runtime_native;
	if (strcmp(name, "exec") == 0)
		return &agent_runtime_exec;
	if (strcmp(name, "python") == 0)
		return load_python(err, errlen);
	snprintf(err, errlen, "unknown runtime '%.64s' (native, python, exec)", name);
	return NULL;
}

static int is_warm(const struct agent_runtime *rt)
{
	for (size_t i = 0; i < sizeof warmed / sizeof warmed[0]; i++)
		if (warmed[i] == rt)
			return 1;
	return 0;
}

static void mark_warm(const struct agent_runtime *rt)
{
	for (size_t i = 0; i < sizeof warmed / sizeof warmed[0]; i++)
		if (!warmed[i]) {
			warmed[i] = rt;
			return;
		}
}

/* Append the tail of captured output to an error message. */
static void add_output(char *err, size_t errlen, const uint8_t *out, size_t n)
{
	size_t used = strlen(err);
	if (!n || used + 16 >= errlen)
		return;
	size_t keep = n > LOAD_LOG_TAIL ? LOAD_LOG_TAIL : n;
	if (keep > errlen - used - 16)
		keep = errlen - used - 16;
	snprintf(err + used, errlen - used, "\noutput: %.*s", (int)keep, (const char *)out + n - keep);
}

/* Run fn(arg) with fds 1 and 2 captured when rt wants it; a failure gets
 * the tail of the output appended to err. */
static int run_captured(const struct agent_runtime *rt, int (*fn)(const void *, char *, size_t),
			const void *arg, char *err, size_t errlen)
{
	int capturing = rt->capture_fds && agent_capture_begin(&cap) == 0;
	int rc = fn(arg, err, errlen);
	if (capturing) {
		uint8_t *out;
		size_t n;
		if (agent_capture_end(&cap, LOAD_LOG_TAIL, &out, &n) == 0 && rc < 0)
			add_output(err, errlen, out, n);
		free(out);
	}
	return rc;
}

static int do_warm(const void *rt, char *err, size_t errlen)
{
	const struct agent_runtime *r = rt;
	return r->warm ? r->warm(&cfg, err, errlen) : 0;
}

static const struct agent_runtime *loading;
static int do_load(const void *fn, char *err, size_t errlen)
{
	return loading->load(fn, err, errlen);
}

/* A fresh, empty fn_dir (a new tmpfs of `budget` bytes when configured);
 * returns an fd on it or -errno. */
static int fresh_dir(uint64_t budget, char *err, size_t errlen)
{
	if (mkdir(cfg.fn_dir, 0755) < 0 && errno != EEXIST) {
		int e = -errno;
		snprintf(err, errlen, "mkdir %s: %s", cfg.fn_dir, strerror(-e));
		return e;
	}
	if (cfg.mount_tmpfs) {
		char opts[128];
		if (fn_mounted && umount2(cfg.fn_dir, MNT_DETACH) == 0)
			fn_mounted = 0;
		snprintf(opts, sizeof opts, "size=%llu,nr_inodes=%u,mode=0755",
			 (unsigned long long)budget, AGENT_PKG_MAX_ENTRIES + 64);
		if (mount("tmpfs", cfg.fn_dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
			int e = -errno;
			snprintf(err, errlen, "mount a tmpfs on %s: %s", cfg.fn_dir, strerror(-e));
			return e;
		}
		fn_mounted = 1;
	}
	int fd = open(cfg.fn_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = -errno;
		snprintf(err, errlen, "open %s: %s", cfg.fn_dir, strerror(-e));
		return e;
	}
	int rc = cfg.mount_tmpfs ? 0 : agent_pkg_clear(fd);
	if (rc < 0) {
		close(fd);
		snprintf(err, errlen, "empty %s: %s", cfg.fn_dir, strerror(-rc));
		return rc;
	}
	return fd;
}

static int install(const struct agent_runtime *rt, const struct agent_init *req, char *err,
		   size_t errlen)
{
	uint64_t mb = req->memory_mb ? req->memory_mb : AGENT_DEFAULT_MEMORY_MB;
	struct agent_pkg_limits lim = { .max_bytes = mb << 19, .max_entries = AGENT_PKG_MAX_ENTRIES };
	int fd = fresh_dir(lim.max_bytes, err, errlen);
	if (fd < 0)
		return fd;
	int rc = agent_pkg_unpack(req->package, req->package_len, fd, &lim, NULL, err, errlen);
	close(fd);
	if (rc < 0)
		return rc;
	struct agent_fn fn = { .dir = cfg.fn_dir, .handler = req->handler, .env = req->env,
			       .n_env = req->n_env };
	loading = rt;
	return run_captured(rt, do_load, &fn, err, errlen);
}

/* Init.env goes into the environment before the runtime starts; a failed
 * Init puts the old values back, so a retry does not inherit them. */
struct env_old {
	char *key, *value;           /* value NULL: the key was unset */
};

static void env_restore(struct env_old *old, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		if (old[i].value)
			setenv(old[i].key, old[i].value, 1);
		else
			unsetenv(old[i].key);
		free(old[i].key);
		free(old[i].value);
	}
	free(old);
}

static void env_keep(struct env_old *old, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(old[i].key);
		free(old[i].value);
	}
	free(old);
}

static int env_apply(const struct agent_init *req, struct env_old **out, char *err, size_t errlen)
{
	struct env_old *old = calloc(req->n_env ? req->n_env : 1, sizeof *old);
	if (!old) {
		snprintf(err, errlen, "env: out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < req->n_env; i++) {
		const char *was = getenv(req->env[i].key);
		old[i].key = strdup(req->env[i].key);
		old[i].value = was ? strdup(was) : NULL;
		int rc = !old[i].key || (was && !old[i].value) ? -ENOMEM : 0;
		if (rc == 0 && setenv(req->env[i].key, req->env[i].value, 1) < 0)
			rc = -errno;
		if (rc < 0) {
			snprintf(err, errlen, "env %.64s: %s", req->env[i].key, strerror(-rc));
			env_restore(old, i + 1);
			return rc;
		}
	}
	*out = old;
	return 0;
}

static int runtime_init(const struct agent_init *req, char *err, size_t errlen)
{
	if (strcmp(req->runtime, "echo") == 0) {
		if (!cur)
			return 0;   /* echo stays echo */
		snprintf(err, errlen, "echo: the agent already runs %s", cur->name);
		return -EINVAL;
	}
	const struct agent_runtime *rt = req->runtime[0] ? find(req->runtime, err, errlen) : NULL;
	if (!rt) {
		if (!req->runtime[0])
			snprintf(err, errlen, "Init.runtime is empty (native, python, exec)");
		state = AGENT_HANDLER_FAILED;
		return -EINVAL;
	}
	struct env_old *old;
	int rc = env_apply(req, &old, err, errlen);
	if (rc < 0) {
		state = AGENT_HANDLER_FAILED;
		return rc;
	}
	if (!is_warm(rt)) {
		rc = run_captured(rt, do_warm, rt, err, errlen);
		if (rc == 0)
			mark_warm(rt);
	}
	if (rc == 0) {
		cur = rt;
		if (req->package_len == 0) {     /* runtime-only: the function comes next */
			env_keep(old, req->n_env);
			state = AGENT_HANDLER_FRESH;
			accepts_init = 1;
			return 0;
		}
		rc = install(rt, req, err, errlen);
	}
	if (rc == 0)
		env_keep(old, req->n_env);
	else
		env_restore(old, req->n_env);
	state = rc == 0 ? AGENT_HANDLER_READY : AGENT_HANDLER_FAILED;
	accepts_init = rc != 0;
	return rc;
}

static int runtime_invoke(const struct agent_call *call, struct agent_reply *out)
{
	if (!cur)
		return agent_handler_echo.invoke(call, out);
	int capturing = 0, crc = 0;
	if (cur->capture_fds) {
		crc = agent_capture_begin(&cap);
		capturing = crc == 0;
	}
	int rc = cur->invoke(call, out);
	if (capturing) {
		uint8_t *logs;
		size_t n;
		crc = agent_capture_end(&cap, UF_AGENT_MAX_LOGS, &logs, &n);
		if (logs) {
			free(out->logs);
			out->logs = logs;
			out->logs_len = n;
		}
	}
	if (crc < 0 && !out->logs) {
		char msg[128];
		int n = snprintf(msg, sizeof msg, "agent: output not captured: %s\n", strerror(-crc));
		out->logs = (uint8_t *)strdup(msg);
		out->logs_len = out->logs ? (size_t)n : 0;
	}
	return rc;
}

int agent_runtime_after_fixup(void)
{
	int rc = 0;
	for (size_t i = 0; i < sizeof warmed / sizeof warmed[0]; i++)
		if (warmed[i] && warmed[i]->after_fixup) {
			int r = warmed[i]->after_fixup();
			if (r < 0 && rc == 0)
				rc = r;
		}
	return rc;
}

void agent_runtime_status(struct agent_handler_status *st)
{
	st->runtime = cur ? cur->name : agent_handler_echo.name;
	st->state = state;
	st->accepts_init = accepts_init;
}

const struct agent_handler agent_handler_runtime = {
	.name = "echo",
	.init = runtime_init,
	.invoke = runtime_invoke,
};
