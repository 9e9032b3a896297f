/* fork_itest.c — copy-on-write clones of a booted, snapshotted Linux guest:
 * many clones from one template all answer, each gets its own entropy and
 * the host's wall clock through the post-clone Fixup, writes stay private to
 * the clone that made them, a clone of a clone carries its parent's state,
 * and an idle clone costs far less memory than the guest has.
 *
 *   fork-itest KERNEL INITRD [TEST...]     (through tools/kvm-run)
 *
 * FORK_ITEST_CLONES sets how many clones many_clones makes (default 200;
 * ~20 s in the KVM sandbox).  ITEST_VERBOSE=1 logs each step.  Known bug,
 * why make test leaves this out (UNIFORK_TEST_CLONES=1 puts it back): in the
 * sandbox some runs stall on a clone — once after hello, fixup and "rand"
 * had answered and "time" never did; once with the sandbox's two vCPUs
 * spinning at 100% and no clone progressing.  Not found yet.  (In the
 * sandbox, destroying VMs back to back used to hang in kthread_stop() of
 * KVM's NX-hugepage recovery thread: tools/sandbox/init.c loads kvm with
 * nx_huge_pages=never.)
 *
 * Today a clone is a VM created and restored from the snapshot on demand
 * (snap_vm_thread_start); the pre-built shell pool of forker/ is not yet
 * used for Linux guests.
 */
#include "snapshotter/snapshot.h"
#include "tests/integration/itest.h"
#include "vmm/err.h"
#include "vmm/vm_thread.h"

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

/* A clone: restore from `dir`, connect, Fixup (fresh entropy + our clock). */
struct clone {
	struct vmm_vm_thread t;
	int fd;
};

static int verbose;
#define STEP(...) do { if (verbose) { fprintf(stderr, "  [%.3f] ", (double)vmm_now_ns() / 1e9); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static int clone_start(struct clone *c, const char *dir)
{
	struct snap_image img;
	c->fd = -1;
	STEP("restore");
	CHECK(snap_open(dir, &(struct snap_expect){0}, &img) == 0, "open %s: %s", dir, vmm_strerror());
	int r = snap_vm_thread_start(&c->t, &base_cfg, &img, NULL, NULL);
	snap_image_close(&img);
	CHECK(r == 0, "clone from %s: %s", dir, vmm_strerror());
	STEP("connect");
	if (itest_open_agent(&c->t.vm, &c->fd))
		return -1;
	uint8_t ent[48];
	CHECK(getrandom(ent, sizeof(ent), 0) == (ssize_t)sizeof(ent), "getrandom");
	struct agent_fixup_ack ack;
	STEP("fixup");
	r = agent_client_fixup(c->fd, ent, sizeof(ent), realtime_ns(), &ack, CLONE_IO_MS);
	CHECK(r == 0, "fixup: %s", strerror(-r));
	CHECK(ack.ok, "fixup refused: entropy %d, reseed %d, clock %d", ack.entropy_errno,
	      ack.reseed_errno, ack.clock_errno);
	return 0;
}

static void clone_end(struct clone *c)
{
	STEP("end");
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	vmm_vm_thread_release(&c->t);
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
		clone_end(&c);
		if (r) {
			char m[512];
			memcpy(m, itest_failmsg, sizeof(m));
			CHECK(0, "clone %d: %s", i, m);
		}
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
	close(a.fd);
	a.fd = -1;
	vmm_vm_stop(&a.t.vm);
	vmm_vm_thread_join(&a.t, 30 * SEC);
	if (r == 0 && snap_save(&a.t.vm, cdir, &(struct snap_origin){0}, 0, NULL)) {
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
	long anon = smaps_kb(c.t.vm.mem.host, "Anonymous");
	long rss = smaps_kb(c.t.vm.mem.host, "Rss");
	clone_end(&c);
	if (r)
		return r;
	CHECK(anon >= 0 && rss >= 0, "no smaps entry for the clone's memory");
	printf("    idle echo clone: %ld KiB private (copied on write), %ld KiB resident, of %d MiB\n",
	       anon, rss, GUEST_MIB);
	CHECK(anon < GUEST_MIB * 1024 / 16, "clone owns %ld KiB of %d MiB", anon, GUEST_MIB);
	return 0;
}

static const struct itest_case cases[] = {
	{"template", t_template},
	{"many_clones", t_many_clones},
	{"writes_are_private", t_writes_are_private},
	{"clone_of_a_clone", t_clone_of_a_clone},
	{"idle_clone_memory", t_idle_clone_memory},
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
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", work);
	if (system(cmd) != 0)
		fprintf(stderr, "fork-itest: could not remove %s\n", work);
	return rc;
}
