/* runtime.h — function runtimes in the agent.  This header owns two things:
 *
 * 1. The runtime dispatcher, agent_handler_runtime (runtime.c): the handler
 *    the agent serves in the guest.  From boot it answers as echo (and the
 *    diagnostics, handler.h), READY, so the existing guest tests work
 *    without an Init.  An Init names a runtime (native, python, exec):
 *
 *      Init{runtime=R, package=<empty>}   runtime-only warm-up: R starts
 *          (python: Py_Initialize + common stdlib imports; native, exec:
 *          nothing) and the agent reports Hello{runtime=R, FRESH}: it takes
 *          a second Init, with the package.  This is the "runtime" link of
 *          the template chain base -> runtime -> function.
 *      Init{runtime=R, package=.tar.gz}   Init.env is set (setenv), R warms
 *          up if it has not, the package is unpacked into fn_dir (a fresh
 *          tmpfs in the guest, sized to the memory budget: half of
 *          Init.memory_mb, 128 MiB when 0), and R loads the handler and runs
 *          its init hook.  Success: READY, no further Init; failure: FAILED,
 *          InitResult.error says why, and another Init may be sent.
 *      Init{runtime="echo"}               acknowledged, nothing changes.
 *
 *    A runtime's stdout/stderr during the load and during each call is
 *    captured (runtime_capture.h): a call's output goes to Result.logs (the
 *    tail, UF_AGENT_MAX_LOGS), a failed load's tail is appended to the
 *    InitResult error.
 *
 * 2. The interface every runtime implements (struct agent_runtime):
 *    runtime_native.c, runtime_exec.c, and runtime_python.c, which is built
 *    into its own shared object (uf-runtime-python.so, linked against
 *    libpython3.11) that the dispatcher dlopen()s only when an Init asks
 *    for python, so the agent itself has no libpython dependency.
 *
 * Everything here runs on the server's thread, one call at a time.
 */
#ifndef UF_AGENT_RUNTIME_H
#define UF_AGENT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "guest-agent/handler.h"

#define AGENT_FN_DIR             "/fn"
#define AGENT_PYTHON_SO          "/usr/lib/unifork/uf-runtime-python.so"
#define AGENT_PYTHON_STDLIB      "/usr/lib/python3.11"
#define AGENT_EXEC_READY_MS      120000   /* an exec handler's start-up, at most */
#define AGENT_DEFAULT_MEMORY_MB  128u     /* Init.memory_mb 0 */
#define AGENT_PKG_MAX_ENTRIES    65536u   /* files, dirs and links in a package */

struct agent_runtime_config {
	const char *fn_dir;          /* packages are unpacked here (created if missing) */
	int mount_tmpfs;             /* mount a tmpfs sized to the budget on fn_dir (PID 1) */
	const char *python_so;       /* the python runtime's shared object */
	const char *python_stdlib;   /* its standard library (lib-dynload inside) */
	unsigned exec_ready_ms;      /* 0: AGENT_EXEC_READY_MS */
};

/* Set before serving (the strings must outlive the agent).  Without a
 * call the defaults above apply (fn_dir /fn with a tmpfs). */
void agent_runtime_configure(const struct agent_runtime_config *cfg);

/* The dispatcher keeps its own state: serve it with
 *   struct agent_server_opts o = { .handler = &agent_handler_runtime,
 *                                  .status = agent_runtime_status,
 *                                  .after_fixup = agent_runtime_after_fixup };
 * (without the status callback the server would treat it as a handler
 * that needs an Init before any call, and refuse a second Init). */
extern const struct agent_handler agent_handler_runtime;
void agent_runtime_status(struct agent_handler_status *st);
/* For agent_server_opts.after_fixup: every started runtime's after_fixup
 * (python reseeds `random`).  0 or the first -errno. */
int agent_runtime_after_fixup(void);

/* ---- the runtime interface ---- */

#define AGENT_RUNTIME_ABI 1u          /* bumped when struct agent_runtime changes */

/* What a runtime gets to install a function.  Valid during load only. */
struct agent_fn {
	const char *dir;              /* the unpacked package */
	const char *handler;          /* Init.handler; "" = the runtime's default */
	const struct agent_env_kv *env;  /* Init.env, already in the C environment */
	size_t n_env;
};

struct agent_runtime {
	unsigned abi;                 /* AGENT_RUNTIME_ABI */
	const char *name;
	int capture_fds;              /* nonzero: the dispatcher captures fds 1 and 2
				       * around load and invoke into the logs */
	/* Start the runtime itself, once per agent (NULL: nothing to do).
	 * 0 or -errno with a message in err. */
	int (*warm)(const struct agent_runtime_config *cfg, char *err, size_t errlen);
	/* Load the function from fn->dir and run its init hook.  0 or -errno
	 * with a message in err; after a failure nothing of the function is
	 * kept and load may be called again. */
	int (*load)(const struct agent_fn *fn, char *err, size_t errlen);
	/* One call, as agent_handler.invoke (handler.h).  A failed handler
	 * returns -errno with out->error set (the host answers 502). */
	int (*invoke)(const struct agent_call *call, struct agent_reply *out);
	/* After each Fixup (a new clone): reseed what the runtime seeded before
	 * the snapshot.  NULL: nothing to do.  0 or -errno. */
	int (*after_fixup)(void);
};

extern const struct agent_runtime agent_runtime_native;
extern const struct agent_runtime agent_runtime_exec;

/* uf-runtime-python.so exports this function (dlsym name below). */
#define AGENT_PYTHON_ENTRY "agent_runtime_python_get"
const struct agent_runtime *agent_runtime_python_get(void);

/* A handler path inside the package: relative, no "..", no empty or "."
 * components, at most 255 bytes.  0 or -EINVAL. */
int agent_runtime_check_relpath(const char *p);

#endif
