/* runtime_itest.c — the agent's function runtimes in a real guest booted
 * with the python initramfs (our VMM, vsock CID 3), packages from
 * build/functions/, one boot per case (an agent takes one function): echo
 * before any Init, native and exec functions and their failures, the
 * python runtime-only warm-up, and the template chain base -> runtime ->
 * function through snapshots and copy-on-write restores.
 *   runtime-itest KERNEL PYTHON-INITRD FUNCTIONS-DIR [TEST...]
 * (tests/integration/runtimes.sh); closes with "N passed, N failed". */
#include "snapshotter/snapshot.h"
#include "tests/integration/itest.h"
#include "vmm/err.h"
#include "vmm/vm_thread.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000ull

static const char *kernel, *initrd, *fndir;
static char work[PATH_MAX];
/* Guest RAM: 256 MiB, or RUNTIME_ITEST_MEM_MB. */
static struct vmm_vm_config cfg = {.mem_size = 256ull << 20, .console_fd = STDERR_FILENO,
				   .vsock_cid = 3};

static int boot(struct vmm_vm_thread *t)
{
	uint64_t t0 = vmm_now_ns();
	int r = vmm_vm_thread_start(t, &cfg, kernel, initrd, ITEST_CMDLINE, 120 * SEC);
	CHECK(r == 0, "boot: %s", vmm_strerror());
	printf("    boot to agent ready: %.0f ms\n", (double)(vmm_now_ns() - t0) / 1e6);
	return 0;
}

/* Shutdown through the agent; the guest must power off with status 0. */
static int shutdown_vm(struct vmm_vm_thread *t)
{
	int fd;
	if (itest_open_agent(&t->vm, &fd))
		return -1;
	int r = agent_client_shutdown(fd, 0, ITEST_IO_MS);
	close(fd);
	CHECK(r == 0, "shutdown: %s", strerror(-r));
	r = vmm_vm_thread_join(t, 60 * SEC);
	CHECK(r == 0, "guest still running 60 s after Shutdown");
	CHECK(t->exit.kind == VMM_EXIT_STATUS && t->exit.status == 0, "guest exit: %s",
	      t->exit.detail);
	vmm_vm_thread_release(t);
	return 0;
}

/* End a test: a failure releases the VM as it is, success shuts it down. */
static int end(struct vmm_vm_thread *t, int failed)
{
	if (failed) {
		vmm_vm_thread_release(t);
		return -1;
	}
	return shutdown_vm(t);
}

/* Hello on a new connection; checks runtime and state. */
static int open_expect(struct vmm_vm *vm, const char *runtime, Ufagent__AgentState state, int *fd)
{
	int r = vsock_host_connect_wait(vm->vsock, UF_AGENT_VSOCK_PORT, 20000, fd);
	CHECK(r == 0, "connect to the agent: %s", strerror(-r));
	struct agent_hello h;
	r = agent_client_hello(*fd, &h, ITEST_IO_MS);
	if (r)
		close(*fd);
	CHECK(r == 0, "hello: %s", strerror(-r));
	if (strcmp(h.runtime, runtime) || h.state != state)
		close(*fd);
	CHECK(strcmp(h.runtime, runtime) == 0 && h.state == state,
	      "hello: runtime %s state %d, expected %s state %d", h.runtime, h.state, runtime, state);
	return 0;
}

static uint8_t *read_pkg(const char *name, size_t *len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s.tar.gz", fndir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *p = malloc(UF_AGENT_MAX_PAYLOAD);
	*len = p ? fread(p, 1, UF_AGENT_MAX_PAYLOAD, f) : 0;
	fclose(f);
	return p;
}

/* Init with a package from the functions dir (NULL: runtime only, or raw
 * bytes in raw/rawlen).  want_ok: whether InitResult.ok must be set;
 * want_err: a substring the error must hold when it is not. */
static int do_init(int fd, const char *runtime, const char *handler, const char *pkgname,
		   const void *raw, size_t rawlen, const char *const *env, size_t n_env,
		   int want_ok, const char *want_err)
{
	size_t len = rawlen;
	uint8_t *pkg = NULL;
	if (pkgname) {
		pkg = read_pkg(pkgname, &len);
		CHECK(pkg, "%s/%s.tar.gz: %s (make functions)", fndir, pkgname, strerror(errno));
	}
	struct agent_init_req req = {.package = pkg ? pkg : raw, .package_len = len,
				     .runtime = runtime, .handler = handler ? handler : "",
				     .env = env, .n_env = n_env, .memory_mb = 128};
	struct agent_init_result res;
	int r = agent_client_init(fd, &req, &res, ITEST_IO_MS);
	free(pkg);
	CHECK(r == 0, "init %s %s: %s", runtime, pkgname ? pkgname : "", strerror(-r));
	printf("    init %s %s: %s%s (%.1f ms in the agent)\n", runtime,
	       pkgname ? pkgname : (rawlen ? "(bytes)" : "(runtime only)"), res.ok ? "ok" : "failed: ",
	       res.ok ? "" : res.error, res.duration_us / 1e3);
	CHECK(!!res.ok == !!want_ok, "init %s: ok=%d, expected %d (%s)", runtime, res.ok, want_ok,
	      res.error);
	CHECK(want_ok || !want_err || strstr(res.error, want_err), "init error '%s' lacks '%s'",
	      res.error, want_err);
	return 0;
}

/* One call: status, exact body (NULL: any), a logs and an error substring. */
static int call(int fd, const char *ev, uint32_t status, const char *body, const char *logs,
		const char *err)
{
	struct agent_result r;
	int rc = agent_client_invoke(fd, "itest", ev, strlen(ev), 0, &r);
	CHECK(rc == 0, "invoke '%s': %s", ev, strerror(-rc));
	char got[512];
	snprintf(got, sizeof got, "%.*s", (int)(r.body_len < 400 ? r.body_len : 400), (const char *)r.body);
	int ok = r.status == status &&
		 (!body || (r.body_len == strlen(body) && memcmp(r.body, body, r.body_len) == 0)) &&
		 (!logs || memmem(r.logs, r.logs_len, logs, strlen(logs)) != NULL) &&
		 (err ? strstr(r.error, err) != NULL : r.error[0] == 0);
	char e[256], l[256];
	snprintf(e, sizeof e, "%s", r.error);
	snprintf(l, sizeof l, "%.*s", (int)(r.logs_len < 200 ? r.logs_len : 200), (const char *)r.logs);
	uint32_t st = r.status;
	agent_result_free(&r);
	CHECK(ok, "'%s': status %u body '%s' error '%s' logs '%s'", ev, st, got, e, l);
	return 0;
}

static int t_echo_before_init(void)
{
	struct vmm_vm_thread t;
	int fd;
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = itest_echo(fd, 65536, 5);
	close(fd);
	return end(&t, r);
}

static int t_native(void)
{
	struct vmm_vm_thread t;
	int fd;
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	static const char junk[] = "definitely not a tar.gz";
	const char *fail_env[] = {"UF_TEST_INIT_FAIL=1"};
	const char *env[] = {"UF_TEST_VAR=guest-env"};
	if (do_init(fd, "native", NULL, NULL, junk, sizeof junk, NULL, 0, 0, "not gzip") ||
	    do_init(fd, "native", NULL, "hello-python", NULL, 0, NULL, 0, 0,
		    "handler.so is not a file in the package") ||
	    do_init(fd, "native", NULL, "test-native", NULL, 0, fail_env, 1, 0, "uf_init returned 7") ||
	    do_init(fd, "native", NULL, "test-native", NULL, 0, env, 1, 1, NULL) ||
	    call(fd, "env", 200, "guest-env", NULL, NULL) || call(fd, "count", 200, "2 1", NULL, NULL) ||
	    call(fd, "hi", 200, "native:hi", "test-native: stderr line", NULL) ||
	    call(fd, "fail", 502, NULL, "failing on purpose", "uf_handle returned 3") ||
	    call(fd, "teapot", 418, "short and stout", NULL, NULL)) {
		close(fd);
		return end(&t, 1);
	}
	close(fd);
	if (open_expect(&t.vm, "native", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	close(fd);
	return end(&t, 0);
}

/* Boot, deploy one example, one call, shut down. */
static int hello(const char *runtime, const char *pkg, const char *env, const char *ev,
		 const char *body, const char *log)
{
	struct vmm_vm_thread t;
	int fd;
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = do_init(fd, runtime, NULL, pkg, NULL, 0, &env, env ? 1 : 0, 1, NULL) ||
		call(fd, ev, 200, body, log, NULL);
	close(fd);
	return end(&t, r);
}

static int t_native_hello_c(void)
{
	return hello("native", "hello-c", "GREETING=hi", "Ada", "hi, Ada!\n", "hello-c: call");
}

static int t_exec(void)
{
	struct vmm_vm_thread t;
	int fd;
	const char *env[] = {"UF_TEST_VAR=exec-guest"};
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = do_init(fd, "exec", NULL, "test-exec", NULL, 0, env, 1, 1, NULL) ||
		call(fd, "a", 200, "exec:1:a", "test-exec: call 1", NULL) ||
		call(fd, "env", 200, "exec-guest", NULL, NULL) ||
		call(fd, "crash", 502, NULL, "test-exec: crashing", "killed by signal 11") ||
		call(fd, "b", 200, "exec:1:b", NULL, NULL) ||
		call(fd, "exit", 502, NULL, NULL, "exited with status 4") ||
		call(fd, "c", 200, "exec:1:c", NULL, NULL);
	close(fd);
	return end(&t, r);
}

static int t_exec_hello(void)
{
	return hello("exec", "hello-exec", NULL, "Eve", "hello, Eve!\n", "hello-exec: call 1");
}

static int t_python_warmup_then_functions(void)
{
	struct vmm_vm_thread t;
	int fd;
	const char *env[] = {"GREETING=hey"};
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = do_init(fd, "python", NULL, NULL, NULL, 0, NULL, 0, 1, NULL);
	close(fd);
	if (r || open_expect(&t.vm, "python", UFAGENT__AGENT_STATE__AGENT_STATE_FRESH, &fd))
		return end(&t, 1);
	r = do_init(fd, "python", NULL, "hello-python", NULL, 0, env, 1, 1, NULL) ||
	    call(fd, "Bob", 200, "hey, Bob!\n", "hello-python: call itest", NULL);
	close(fd);
	return end(&t, r);
}

static int t_python_fixture(void)
{
	struct vmm_vm_thread t;
	int fd;
	const char *env[] = {"UF_TEST_VAR=py-guest"};
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = do_init(fd, "python", "handler.nothere", "test-python", NULL, 0, NULL, 0, 0,
			"has no function nothere") ||
		do_init(fd, "python", NULL, "test-python", NULL, 0, env, 1, 1, NULL) ||
		call(fd, "x", 200, "python:x", "test-python: call 1", NULL) ||
		call(fd, "raise", 502, NULL, "Traceback", "ValueError: raised on purpose in itest") ||
		call(fd, "types", 200, "{\"list\": [1, 2.5, \"three\"], \"none\": null, \"call_id\": \"itest\"}",
		     NULL, NULL) ||
		call(fd, "env", 200, "py-guest", NULL, NULL) ||
		call(fd, "import", 200, "statistics 2", NULL, NULL) ||
		call(fd, "count", 200, "6", NULL, NULL);
	close(fd);
	return end(&t, r);
}

static int fixup(int fd)
{
	uint8_t ent[48];
	struct timespec ts;
	struct agent_fixup_ack ack;
	CHECK(getrandom(ent, sizeof ent, 0) == (ssize_t)sizeof ent, "getrandom");
	clock_gettime(CLOCK_REALTIME, &ts);
	int r = agent_client_fixup(fd, ent, sizeof ent, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
				   &ack, ITEST_IO_MS);
	CHECK(r == 0 && ack.ok, "fixup: %s, ok %d", strerror(-r), r == 0 && ack.ok);
	return 0;
}

static int snapshot(struct vmm_vm_thread *t, const char *dir)
{
	vmm_vm_stop(&t->vm);
	CHECK(vmm_vm_thread_join(t, 30 * SEC) == 0, "run thread did not stop");
	struct snap_save_stats st;
	int r = snap_save(&t->vm, dir, &(struct snap_origin){0}, 0, &st);
	vmm_vm_thread_release(t);
	CHECK(r == 0, "snapshot %s: %s", dir, vmm_strerror());
	printf("    snapshot %s: %.1f MiB non-zero memory, %.0f ms\n", strrchr(dir, '/') + 1,
	       st.mem.nonzero_pages * 4096.0 / (1 << 20), st.total_us / 1e3);
	return 0;
}

static int restore(struct vmm_vm_thread *t, const char *dir)
{
	struct snap_expect exp = {0};
	struct snap_image img;
	int r = snap_open(dir, &exp, &img);
	CHECK(r == 0, "open %s: %s", dir, vmm_strerror());
	r = snap_vm_thread_start(t, &cfg, &img, NULL, NULL);
	snap_image_close(&img);
	CHECK(r == 0, "restore %s: %s", dir, vmm_strerror());
	return 0;
}

/* base -> runtime template -> function template -> clone: the runtime's
 * warm-up and the function's imports run once, before their snapshots. */
static int t_python_template_chain(void)
{
	char rt_dir[PATH_MAX + 16], fn_dir[PATH_MAX + 16];
	snprintf(rt_dir, sizeof rt_dir, "%s/python-runtime", work);
	snprintf(fn_dir, sizeof fn_dir, "%s/heavy-python", work);
	struct vmm_vm_thread t;
	int fd;
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = do_init(fd, "python", NULL, NULL, NULL, 0, NULL, 0, 1, NULL);
	close(fd);
	if (r)
		return end(&t, 1);
	if (snapshot(&t, rt_dir))
		return -1;

	if (restore(&t, rt_dir))
		return -1;
	if (open_expect(&t.vm, "python", UFAGENT__AGENT_STATE__AGENT_STATE_FRESH, &fd))
		return end(&t, 1);
	char first[512] = "";
	r = fixup(fd) || do_init(fd, "python", NULL, "heavy-python", NULL, 0, NULL, 0, 1, NULL);
	if (r == 0) {
		struct agent_result res;
		r = agent_client_invoke(fd, "c1", "<req><n>5</n></req>", 19, 0, &res);
		if (r)
			snprintf(itest_failmsg, sizeof itest_failmsg, "invoke: %s", strerror(-r));
		if (r == 0) {
			snprintf(first, sizeof first, "%.*s", (int)res.body_len, (const char *)res.body);
			agent_result_free(&res);
		}
	}
	close(fd);
	if (r)
		return end(&t, 1);
	printf("    heavy-python: %s\n", first);
	if (!strstr(first, "\"prime\": 13,") || !strstr(first, "\"sqlite\": \"v5\"") ||
	    !strstr(first, "\"decimal\": \"3.3\"")) {
		end(&t, 1);
		CHECK(0, "heavy-python in the runtime clone answered %s", first);
	}
	if (snapshot(&t, fn_dir))
		return -1;

	/* A clone of the function template answers at once with the state its
	 * template computed: the same import time, to the digit. */
	if (restore(&t, fn_dir))
		return -1;
	if (open_expect(&t.vm, "python", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	r = fixup(fd) || call(fd, "<req><n>5</n></req>", 200, first, NULL, NULL);
	close(fd);
	return end(&t, r);
}

/* One call's body, NUL-terminated, into out. */
static int body_of(int fd, const char *ev, char *out, size_t cap)
{
	struct agent_result r;
	int rc = agent_client_invoke(fd, "itest", ev, strlen(ev), 0, &r);
	CHECK(rc == 0, "invoke '%s': %s", ev, strerror(-rc));
	int ok = r.status == 200;
	snprintf(out, cap, "%.*s", (int)r.body_len, (const char *)r.body);
	agent_result_free(&r);
	CHECK(ok, "'%s' failed: %s", ev, out);
	return 0;
}

/* A clone of `dir`: (Fixup if `fix`), then one call's body. */
static int clone_call(const char *dir, int fix, const char *ev, char *out, size_t cap)
{
	struct vmm_vm_thread t;
	int fd;
	if (restore(&t, dir))
		return -1;
	if (open_expect(&t.vm, "python", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = (fix && fixup(fd)) || body_of(fd, ev, out, cap);
	close(fd);
	return end(&t, r);
}

/* Python's `random` was seeded before the snapshot: clones reseed it on
 * their Fixup (FixupAck.runtime_errno), so two clones draw different
 * numbers, while two clones that skip the Fixup draw the same. */
static int t_python_clones_reseeded(void)
{
	char dir[PATH_MAX + 16];
	snprintf(dir, sizeof dir, "%s/test-python", work);
	struct vmm_vm_thread t;
	int fd;
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = do_init(fd, "python", NULL, "test-python", NULL, 0, NULL, 0, 1, NULL);
	close(fd);
	if (r)
		return end(&t, 1);
	if (snapshot(&t, dir))
		return -1;
	char a[64], b[64], c1[64], c2[64];
	if (clone_call(dir, 1, "random", a, sizeof a) || clone_call(dir, 1, "random", b, sizeof b) ||
	    clone_call(dir, 0, "random", c1, sizeof c1) || clone_call(dir, 0, "random", c2, sizeof c2))
		return -1;
	printf("    random.random(): with Fixup %s, %s; without %s, %s\n", a, b, c1, c2);
	CHECK(strcmp(a, b) != 0, "two clones drew the same number after their Fixup: %s", a);
	CHECK(strcmp(c1, c2) == 0, "clones without Fixup differ (%s, %s): the test proves nothing",
	      c1, c2);
	return 0;
}

/* An exec function's process is part of the snapshot: a clone's first
 * call reaches the process the template started, with its state. */
static int t_exec_template_clone(void)
{
	char dir[PATH_MAX + 16];
	snprintf(dir, sizeof dir, "%s/test-exec", work);
	struct vmm_vm_thread t;
	int fd;
	if (boot(&t))
		return -1;
	if (open_expect(&t.vm, "echo", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	int r = do_init(fd, "exec", NULL, "test-exec", NULL, 0, NULL, 0, 1, NULL) ||
		call(fd, "a", 200, "exec:1:a", NULL, NULL);
	close(fd);
	if (r)
		return end(&t, 1);
	if (snapshot(&t, dir) || restore(&t, dir))
		return -1;
	if (open_expect(&t.vm, "exec", UFAGENT__AGENT_STATE__AGENT_STATE_READY, &fd))
		return end(&t, 1);
	r = fixup(fd) || call(fd, "b", 200, "exec:2:b", "test-exec: call 2", NULL);
	close(fd);
	return end(&t, r);
}

static const struct itest_case cases[] = {
	{"echo_before_init", t_echo_before_init},
	{"native", t_native},
	{"native_hello_c", t_native_hello_c},
	{"exec", t_exec},
	{"exec_hello", t_exec_hello},
	{"python_warmup_then_functions", t_python_warmup_then_functions},
	{"python_fixture", t_python_fixture},
	{"python_template_chain", t_python_template_chain},
	{"python_clones_reseeded", t_python_clones_reseeded},
	{"exec_template_clone", t_exec_template_clone},
};

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: runtime-itest KERNEL PYTHON-INITRD FUNCTIONS-DIR [TEST...]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	kernel = argv[1];
	initrd = argv[2];
	fndir = argv[3];
	const char *mem = getenv("RUNTIME_ITEST_MEM_MB");
	if (mem && atoi(mem) >= 64)
		cfg.mem_size = (uint64_t)atoi(mem) << 20;
	snprintf(work, sizeof work, "/tmp/uf-runtime-itest.XXXXXX");
	if (!mkdtemp(work)) {
		perror("mkdtemp");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	int rc = itest_main(argc, argv, 4, cases, sizeof cases / sizeof cases[0]);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf %s", work);
	if (system(cmd) != 0)
		fprintf(stderr, "runtime-itest: could not remove %s\n", work);
	return rc;
}
