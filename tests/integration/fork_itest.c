/* fork_itest.c — copy-on-write clones of a booted, snapshotted Linux guest
 * on pre-built VM shells (forker/vm_pool.h, forker/vm_clone.h): many clones
 * from one template all answer, each gets its own entropy and the host's
 * wall clock through the post-clone Fixup, writes stay private to the clone
 * that made them, a clone of a clone carries its parent's state, an idle
 * clone costs far less memory than the guest has, a clone reset in place
 * is a fresh instance, a recorded working set loads and prefetches, and a
 * template never reads its memory file again once open.
 *
 *   fork-itest KERNEL INITRD [TEST...]     (through tools/kvm-run)
 *
 * FORK_ITEST_CLONES sets how many clones many_clones makes (default 200).
 * ITEST_VERBOSE=1 logs each step.  A clone that stops answering is reported
 * with where its vCPU was (vmm/vm_debug.h) and its vsock counters.
 */
#include "forker/vm_clone.h"
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

#define GUEST_MIB  256
#define NCLONES_MAX 1000
static int nclones = 200;          /* FORK_ITEST_CLONES overrides */
#define SEC        1000000000ull
#define CLONE_IO_MS 20000         /* a clone answers in ms; 20 s means stuck */

static char work[PATH_MAX], tdir[PATH_MAX + 16], cdir[PATH_MAX + 16];
static const char *kernel, *initrd;
static struct vmm_vm_config base_cfg = {.mem_size = (uint64_t)GUEST_MIB << 20,
					.console_fd = STDERR_FILENO, .vsock_cid = 3};

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int verbose;
#define STEP(...) do { if (verbose) { fprintf(stderr, "  [%.3f] ", (double)vmm_now_ns() / 1e9); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* Templates, opened once per directory (a memfd copy of memory.bin), and
 * one pool of pre-built VM shells for all of them (same size and CID). */
static struct fork_vm_template tmpls[4];
static const char *tmpl_dirs[4];
static struct fork_vm_pool pool;
static bool pool_on;

static int template_for(const char *dir, const struct fork_vm_template **out)
{
	int i, n = (int)(sizeof(tmpls) / sizeof(tmpls[0]));
	for (i = 0; i < n && tmpl_dirs[i]; i++) {
		if (strcmp(tmpl_dirs[i], dir) == 0) {
			*out = &tmpls[i];
			return 0;
		}
	}
	CHECK(i < n, "more than %d templates", n);
	CHECK(fork_vm_template_open(&tmpls[i], dir, &(struct snap_expect){0}) == 0, "open %s: %s", dir,
	      vmm_strerror());
	tmpl_dirs[i] = dir;
	if (!pool_on) {
		struct vmm_vm_config cfg = base_cfg;
		fork_vm_template_config(&tmpls[i], &cfg);
		CHECK(fork_vm_pool_init(&pool, &cfg, 2) == 0, "shell pool: %s", vmm_strerror());
		pool_on = true;
	}
	*out = &tmpls[i];
	return 0;
}

static void templates_close(void)
{
	if (pool_on)
		fork_vm_pool_release(&pool);
	pool_on = false;
	for (size_t i = 0; i < sizeof(tmpls) / sizeof(tmpls[0]); i++) {
		if (tmpl_dirs[i])
			fork_vm_template_close(&tmpls[i]);
		tmpl_dirs[i] = NULL;
	}
}

/* A clone of the template in `dir` on a pre-built shell, connected to its
 * agent and fixed up (fresh entropy + our clock): forker/vm_clone.h. */
struct clone {
	struct fork_vm_clone c;
	int fd;                 /* = c.fd */
};

static int clone_start_flags(struct clone *c, const char *dir, unsigned flags)
{
	const struct fork_vm_template *t;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->c.fd = -1;
	if (template_for(dir, &t))
		return -1;
	STEP("clone");
	int r = fork_vm_clone_start(&c->c, &pool, t, flags, NULL);
	CHECK(r == 0, "clone from %s: %s", dir, vmm_strerror());
	c->fd = c->c.fd;
	return 0;
}

static int clone_start(struct clone *c, const char *dir)
{
	return clone_start_flags(c, dir, 0);
}

static void clone_end(struct clone *c)
{
	STEP("end");
	fork_vm_clone_destroy(&c->c);
	c->fd = -1;
}

/* A clone that stopped answering: what its vsock device and vCPU were
 * doing (the clone must then only be ended). */
static void clone_postmortem(struct clone *c, char *out, size_t cap)
{
	struct vsock_stats vs = {0};
	char where[400] = "VM gone";
	if (c->c.v) {
		struct vmm_vm *vm = &c->c.v->vm;
		if (vm->vsock)
			vsock_host_stats(vm->vsock, &vs);
		uint64_t exits = itest_count_exits(vm, 1000);
		if (fork_vm_halt(c->c.v, 10000))
			snprintf(where, sizeof(where), "%llu exits in 1 s; the vCPU did not stop",
				 (unsigned long long)exits);
		else
			itest_where(vm, kernel, exits, where, sizeof(where));
	}
	snprintf(out, cap, "vsock tx %llu rx %llu pkts, conns %llu/%llu, rst %llu; %s",
		 (unsigned long long)vs.tx_pkts, (unsigned long long)vs.rx_pkts,
		 (unsigned long long)vs.conns_opened, (unsigned long long)vs.conns_closed,
		 (unsigned long long)vs.rst_sent, where);
}

static int diag(struct clone *c, const char *req, char *out, size_t cap, uint32_t want)
{
	uint32_t st;
	STEP("diag %s", req);
	if (itest_diag(c->fd, req, out, cap, &st))
		return -1;
	CHECK(st == want, "diag '%s': status %u (%s), expected %u", req, st, out, want);
	return 0;
}

/* The template: boot, wait for the agent, snapshot, release. */
static int t_template(void)
{
	struct vmm_vm_thread t;
	CHECK(vmm_vm_thread_start(&t, &base_cfg, kernel, initrd, ITEST_CMDLINE, 120 * SEC) == 0,
	      "boot: %s", vmm_strerror());
	int fd;
	int r = itest_open_agent(&t.vm, &fd);
	if (r == 0) {
		r = itest_echo(fd, 1000, 1);
		close(fd);
	}
	vmm_vm_stop(&t.vm);
	vmm_vm_thread_join(&t, 30 * SEC);
	if (r == 0 && snap_save(&t.vm, tdir, &(struct snap_origin){0}, 0, NULL)) {
		snprintf(itest_failmsg, sizeof(itest_failmsg), "snapshot: %s", vmm_strerror());
		r = -1;
	}
	vmm_vm_thread_release(&t);
	return r;
}

static int hexcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* nclones clones (200 by default): every one answers, every one's CRNG output differs, every
 * one's wall clock is within 1 s of ours. */
static int t_many_clones(void)
{
	static char rnd[NCLONES_MAX][80];
	static char *sorted[NCLONES_MAX];
	char buf[128];
	int64_t worst_skew = 0;
	uint64_t t0 = vmm_now_ns();
	for (int i = 0; i < nclones; i++) {
		if (i && i % 20 == 0)
			printf("    %d clones, %.1f s\n", i, (double)(vmm_now_ns() - t0) / 1e9);
		struct clone c;
		int r = clone_start(&c, tdir);
		if (r == 0)
			r = diag(&c, "rand 32", rnd[i], sizeof(rnd[i]), 200);
		if (r == 0)
			r = diag(&c, "time", buf, sizeof(buf), 200);
		int64_t skew = r == 0 ? strtoll(buf, NULL, 10) - realtime_ns() : 0;
		if (r == 0)
			r = itest_echo(c.fd, (size_t)i * 97, (uint64_t)i + 1);
		if (r) {
			char m[512], pm[512];
			memcpy(m, itest_failmsg, sizeof(m));
			clone_postmortem(&c, pm, sizeof(pm));
			clone_end(&c);
			CHECK(0, "clone %d: %s; %s", i, m, pm);
		}
		clone_end(&c);
		if (llabs(skew) > llabs(worst_skew))
			worst_skew = skew;
		CHECK(llabs(skew) < 1000000000ll, "clone %d: guest clock %lld ms off the host's", i,
		      (long long)(skew / 1000000));
		sorted[i] = rnd[i];
	}
	qsort(sorted, (size_t)nclones, sizeof(sorted[0]), hexcmp);
	for (int i = 1; i < nclones; i++)
		CHECK(strcmp(sorted[i - 1], sorted[i]) != 0, "two clones drew the same random bytes %s",
		      sorted[i]);
	printf("    %d clones in %.1f s; worst guest clock skew %.1f ms\n", nclones,
	       (double)(vmm_now_ns() - t0) / 1e9, (double)worst_skew / 1e6);
	return 0;
}

static int file_sha(const char *path, uint8_t out[32])
{
	CHECK(snap_sha256_file(path, out) == 0, "sha256 %s: %s", path, vmm_strerror());
	return 0;
}

/* A write in one clone is invisible to another live clone, to a later
 * clone, and to the template's memory file. */
static int t_writes_are_private(void)
{
	char mem[PATH_MAX + 32], v[128];
	uint8_t before[32], after[32];
	snprintf(mem, sizeof(mem), "%s/memory.bin", tdir);
	if (file_sha(mem, before))
		return -1;
	struct clone a, b, c;
	if (clone_start(&a, tdir))
		return -1;
	int r = clone_start(&b, tdir);
	if (r == 0)
		r = diag(&a, "set secret from-a", v, sizeof(v), 200);
	if (r == 0)
		r = diag(&b, "get secret", v, sizeof(v), 404);
	if (r == 0)
		r = diag(&b, "set secret from-b", v, sizeof(v), 200);
	if (r == 0)
		r = diag(&a, "get secret", v, sizeof(v), 200);
	if (r == 0 && strcmp(v, "from-a") != 0) {
		snprintf(itest_failmsg, sizeof(itest_failmsg), "clone a reads '%s'", v);
		r = -1;
	}
	clone_end(&b);
	clone_end(&a);
	if (r)
		return r;
	if (clone_start(&c, tdir))
		return -1;
	r = diag(&c, "get secret", v, sizeof(v), 404);
	clone_end(&c);
	if (r)
		return r;
	if (file_sha(mem, after))
		return -1;
	CHECK(memcmp(before, after, 32) == 0, "the template's memory file changed");
	return 0;
}

/* A clone's own state becomes a template: its clones see the parent's
 * writes and answer. */
static int t_clone_of_a_clone(void)
{
	struct clone a, b;
	char v[128];
	if (clone_start(&a, tdir))
		return -1;
	int r = diag(&a, "set generation two", v, sizeof(v), 200);
	if (r == 0 && fork_vm_halt(a.c.v, 30000)) {
		snprintf(itest_failmsg, sizeof(itest_failmsg), "halt a clone: %s", vmm_strerror());
		r = -1;
	}
	if (r == 0 && snap_save(&a.c.v->vm, cdir, &(struct snap_origin){0}, 0, NULL)) {
		snprintf(itest_failmsg, sizeof(itest_failmsg), "snapshot of a clone: %s", vmm_strerror());
		r = -1;
	}
	clone_end(&a);
	if (r)
		return r;
	if (clone_start(&b, cdir))
		return -1;
	r = diag(&b, "get generation", v, sizeof(v), 200);
	if (r == 0 && strcmp(v, "two") != 0) {
		snprintf(itest_failmsg, sizeof(itest_failmsg), "grandchild reads '%s'", v);
		r = -1;
	}
	if (r == 0)
		r = itest_echo(b.fd, 65536, 5);
	clone_end(&b);
	return r;
}

/* kB of a field in the smaps block of the mapping that starts at `addr`. */
static long smaps_kb(const void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	char line[512];
	int in = 0;
	long kb = -1;
	size_t flen = strlen(field);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = lo == (unsigned long)(uintptr_t)addr;
			continue;
		}
		if (in && strncmp(line, field, flen) == 0 && line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* An idle echo clone shares the template: its private memory (the pages
 * it wrote) is far below the guest's size. */
static int t_idle_clone_memory(void)
{
	struct clone c;
	if (clone_start(&c, tdir))
		return -1;
	int r = itest_echo(c.fd, 4096, 9);
	long anon = smaps_kb(c.c.v->vm.mem.host, "Anonymous");
	long rss = smaps_kb(c.c.v->vm.mem.host, "Rss");
	clone_end(&c);
	if (r)
		return r;
	CHECK(anon >= 0 && rss >= 0, "no smaps entry for the clone's memory");
	printf("    idle echo clone: %ld KiB private (copied on write), %ld KiB resident, of %d MiB\n",
	       anon, rss, GUEST_MIB);
	CHECK(anon < GUEST_MIB * 1024 / 16, "clone owns %ld KiB of %d MiB", anon, GUEST_MIB);
	return 0;
}

/* Reset in place: the same VM serves a fresh instance of the template —
 * what the last one wrote is gone, its entropy is new, it answers. */
static int t_reset_in_place(void)
{
	struct clone c;
	char v[128], r1[80], r2[80];
	if (clone_start(&c, tdir))
		return -1;
	struct fork_vm *shell = c.c.v;
	int r = diag(&c, "set secret before-reset", v, sizeof(v), 200);
	if (r == 0)
		r = diag(&c, "rand 32", r1, sizeof(r1), 200);
	for (int i = 0; r == 0 && i < 50; i++) {
		struct fork_vm_times tm;
		r = fork_vm_clone_reset(&c.c, 0, &tm);
		if (r) {
			c.c.v = NULL;   /* a failed reset destroyed the clone */
			CHECK(0, "reset %d: %s", i, vmm_strerror());
		}
		c.fd = c.c.fd;
		CHECK(c.c.v == shell, "reset %d moved the clone to another VM", i);
		r = diag(&c, "get secret", v, sizeof(v), 404);
		if (r == 0)
			r = diag(&c, "rand 32", r2, sizeof(r2), 200);
		if (r == 0 && strcmp(r1, r2) == 0) {
			snprintf(itest_failmsg, sizeof(itest_failmsg), "reset %d drew the same bytes %s", i, r2);
			r = -1;
		}
		if (r == 0)
			r = itest_echo(c.fd, 4096 + (size_t)i, (uint64_t)i + 7);
		if (r == 0)
			r = diag(&c, "set secret before-reset", v, sizeof(v), 200);
		memcpy(r1, r2, sizeof(r1));
	}
	clone_end(&c);
	return r;
}

/* A working set recorded from one clone's first invocation loads with the
 * template, and clones that prefetch it answer like any other. */
static int t_working_set(void)
{
	char wdir[PATH_MAX + 32], path[PATH_MAX + 64], cmd[4 * PATH_MAX + 64];
	snprintf(wdir, sizeof(wdir), "%s/ws", work);
	snprintf(cmd, sizeof(cmd), "rm -rf %s && cp -r %s %s", wdir, tdir, wdir);
	CHECK(system(cmd) == 0, "copy the template to %s", wdir);
	struct clone c;
	if (clone_start(&c, tdir))
		return -1;
	int r = itest_echo(c.fd, 4096, 3);
	struct fork_ws ws = {0};
	if (r == 0 && fork_vm_halt(c.c.v, 10000)) {
		snprintf(itest_failmsg, sizeof(itest_failmsg), "halt: %s", vmm_strerror());
		r = -1;
	}
	if (r == 0 && fork_ws_record(&ws, c.c.v->vm.mem.host, c.c.v->vm.mem.size)) {
		snprintf(itest_failmsg, sizeof(itest_failmsg), "record: %s", vmm_strerror());
		r = -1;
	}
	clone_end(&c);
	if (r)
		return r;
	printf("    working set: %llu pages (%llu written) in %zu ranges\n",
	       (unsigned long long)ws.pages, (unsigned long long)ws.written_pages, ws.n);
	CHECK(ws.pages > 16 && ws.pages < ws.mem_size / 4096 / 2, "a working set of %llu pages",
	      (unsigned long long)ws.pages);
	snprintf(path, sizeof(path), "%s/" FORK_WS_FILE, wdir);
	r = fork_ws_save(&ws, path);
	fork_ws_free(&ws);
	CHECK(r == 0, "save: %s", vmm_strerror());
	const struct fork_vm_template *t;
	if (template_for(wdir, &t))
		return -1;
	CHECK(t->ws.pages > 16, "the template loaded a working set of %llu pages",
	      (unsigned long long)t->ws.pages);
	for (int i = 0; i < 3; i++) {
		if (clone_start_flags(&c, wdir, FORK_VM_PREFETCH))
			return -1;
		r = itest_echo(c.fd, 4096, (uint64_t)i);
		struct fork_mem_usage u;
		if (r == 0 && fork_vm_clone_mem_usage(&c.c, &u) == 0 && i == 0)
			printf("    prefetched clone: %llu KiB resident, %llu KiB private\n",
			       (unsigned long long)u.rss_kib, (unsigned long long)u.anon_kib);
		clone_end(&c);
		if (r)
			return r;
	}
	return 0;
}

/* Clones never read memory.bin after the template is open: truncating
 * the file on disk cannot fault them. */
static int t_file_gone(void)
{
	char path[PATH_MAX + 32];
	struct clone c;
	if (clone_start(&c, cdir))      /* opens the clone-of-a-clone template */
		return -1;
	clone_end(&c);
	snprintf(path, sizeof(path), "%s/memory.bin", cdir);
	CHECK(truncate(path, 0) == 0, "truncate %s", path);
	if (clone_start(&c, cdir))
		return -1;
	char v[128];
	int r = diag(&c, "get generation", v, sizeof(v), 200);
	if (r == 0)
		r = itest_echo(c.fd, 100000, 11);
	clone_end(&c);
	return r;
}

static const struct itest_case cases[] = {
	{"template", t_template},
	{"many_clones", t_many_clones},
	{"writes_are_private", t_writes_are_private},
	{"clone_of_a_clone", t_clone_of_a_clone},
	{"idle_clone_memory", t_idle_clone_memory},
	{"reset_in_place", t_reset_in_place},
	{"working_set", t_working_set},
	{"file_gone", t_file_gone},
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fork-itest KERNEL INITRD [TEST...]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	verbose = getenv("ITEST_VERBOSE") != NULL;
	if (getenv("FORK_ITEST_CLONES")) {
		nclones = atoi(getenv("FORK_ITEST_CLONES"));
		if (nclones < 2 || nclones > NCLONES_MAX) {
			fprintf(stderr, "fork-itest: FORK_ITEST_CLONES must be 2..%d\n", NCLONES_MAX);
			return 2;
		}
	}
	kernel = argv[1];
	initrd = argv[2];
	snprintf(work, sizeof(work), "/tmp/uf-fork-itest.XXXXXX");
	if (!mkdtemp(work)) {
		perror("mkdtemp");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	snprintf(tdir, sizeof(tdir), "%s/tmpl", work);
	snprintf(cdir, sizeof(cdir), "%s/child", work);
	int rc = itest_main(argc, argv, 3, cases, sizeof(cases) / sizeof(cases[0]));
	templates_close();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", work);
	if (system(cmd) != 0)
		fprintf(stderr, "fork-itest: could not remove %s\n", work);
	return rc;
}
