/* fork_bench.c — uf-bench-fork: clone-to-first-response of a snapshotted
 * Linux guest on pre-built VM shells (forker/vm_clone.h), step by step.
 *
 *   uf-bench-fork --kernel K --initrd I [--mem MiB] --clones N --json OUT
 *                 [--keep-dir D] [--resets N]
 *
 * Boots the guest once (agent ready, one echo), snapshots it, opens the
 * snapshot as a template (memory into a sealed memfd) and starts a pool of
 * VM shells.  Then:
 *   1. one clone serves an echo and its working set is recorded (forker/ws.h);
 *   2. N clones one after another, alternating plain and prefetching ones
 *      (so drift and noise hit both alike).  Each: take a shell, map,
 *      restore, [prefetch,] run until the guest took the vsock reset,
 *      connect + Hello, Fixup, then one 64-byte echo Invoke (the first
 *      response), its private memory read from smaps, destroy;
 *   3. --resets N resets in place of one clone, each followed by an echo.
 * Writes OUT: {"clones", "failed", "us": {step: {p50, p99, mean}} for the
 * plain clones, "prefetch": the same for the prefetching ones, "reset": the
 * same for resets, "private_kib": {p50, max}, "working_set_pages",
 * "snapshot_bytes", "pool": {...}, "mode"}.  Inside the KVM sandbox the
 * absolute figures are 20-100x hardware's: compare ratios of one run.
 * Errors: one line on stderr, exit 1 (2 for usage).
 */
#include "forker/vm_clone.h"
#include "proto/agent_client.h"
#include "vmm/err.h"
#include "vmm/vm_thread.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMDLINE "console=ttyS0 quiet panic=-1 reboot=k nomodule pci=off tsc=reliable " \
		"no_timer_check rdinit=/init"
#define IO_MS 30000

static __attribute__((noreturn, format(printf, 2, 3))) void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("uf-bench-fork: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

enum step { S_TAKE, S_MAP, S_RESTORE, S_PREFETCH, S_RUN, S_CONNECT, S_FIXUP, S_FIRST, S_TOTAL, NSTEPS };
static const char *step_name[NSTEPS] = {"take", "map", "restore", "prefetch", "run",
					"connect", "fixup", "first_response", "total"};

struct series {
	uint64_t *v[NSTEPS];    /* ns per sample */
	size_t n, cap;
};

static void series_init(struct series *s, size_t cap)
{
	s->n = 0;
	s->cap = cap;
	for (int i = 0; i < NSTEPS; i++)
		if (!(s->v[i] = calloc(cap ? cap : 1, sizeof(uint64_t))))
			die(1, "out of memory");
}

static void series_add(struct series *s, const struct fork_vm_times *tm, uint64_t first_ns)
{
	if (s->n == s->cap)
		return;
	uint64_t *row[NSTEPS];
	for (int i = 0; i < NSTEPS; i++)
		row[i] = &s->v[i][s->n];
	*row[S_TAKE] = tm->take_ns;
	*row[S_MAP] = tm->map_ns;
	*row[S_RESTORE] = tm->restore_ns;
	*row[S_PREFETCH] = tm->prefetch_ns;
	*row[S_RUN] = tm->run_ns;
	*row[S_CONNECT] = tm->connect_ns;
	*row[S_FIXUP] = tm->fixup_ns;
	*row[S_FIRST] = first_ns;
	*row[S_TOTAL] = tm->total_ns + first_ns;
	s->n++;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n) (as bench/benchlib.py). */
static uint64_t pct(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t k = (size_t)((p / 100.0) * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	return v[k > n ? n - 1 : k - 1];
}

static void series_json(FILE *f, const struct series *s)
{
	fputc('{', f);
	for (int i = 0; i < NSTEPS; i++) {
		uint64_t *v = s->v[i], sum = 0;
		qsort(v, s->n, sizeof(*v), cmp_u64);
		for (size_t k = 0; k < s->n; k++)
			sum += v[k];
		fprintf(f, "%s\"%s\": {\"p50\": %.1f, \"p99\": %.1f, \"mean\": %.1f}", i ? ", " : "",
			step_name[i], pct(v, s->n, 50) / 1e3, pct(v, s->n, 99) / 1e3,
			s->n ? (double)sum / (double)s->n / 1e3 : 0.0);
	}
	fputc('}', f);
}

/* One 64-byte echo: the clone's first response. */
static int echo(int fd, unsigned seed, uint64_t *ns)
{
	uint8_t ev[64];
	for (size_t i = 0; i < sizeof(ev); i++)
		ev[i] = (uint8_t)(seed * 31 + i);
	struct agent_result res;
	char id[24];
	snprintf(id, sizeof(id), "b%u", seed);
	uint64_t t0 = vmm_now_ns();
	int r = agent_client_invoke(fd, id, ev, sizeof(ev), 0, &res);
	*ns = vmm_now_ns() - t0;
	if (r)
		return vmm_errno(r, "echo");
	int ok = res.status == 200 && res.body_len == sizeof(ev) && !memcmp(res.body, ev, sizeof(ev));
	agent_result_free(&res);
	return ok ? 0 : vmm_err(-EPROTO, "echo came back wrong");
}

static void make_template(const char *kernel, const char *initrd, uint64_t mem, const char *dir)
{
	struct vmm_vm_config cfg = {.mem_size = mem, .console_fd = -1, .vsock_cid = 3};
	struct vmm_vm_thread t;
	if (vmm_vm_thread_start(&t, &cfg, kernel, initrd, CMDLINE, 120000000000ull))
		die(1, "boot: %s", vmm_strerror());
	int fd, r = vsock_host_connect_wait(t.vm.vsock, UF_AGENT_VSOCK_PORT, IO_MS, &fd);
	struct agent_hello h;
	uint64_t ns;
	if (r || agent_client_hello(fd, &h, IO_MS) || echo(fd, 0, &ns))
		die(1, "the booted guest does not answer: %s", vmm_strerror());
	close(fd);
	vmm_vm_stop(&t.vm);
	vmm_vm_thread_join(&t, 30000000000ull);
	if (snap_save(&t.vm, dir, &(struct snap_origin){0}, 0, NULL))
		die(1, "snapshot: %s", vmm_strerror());
	vmm_vm_thread_release(&t);
}

static void record_ws(struct fork_vm_pool *pool, struct fork_vm_template *t, const char *dir)
{
	struct fork_vm_clone c;
	uint64_t ns;
	if (fork_vm_clone_start(&c, pool, t, 0, NULL) || echo(c.fd, 1, &ns) || fork_vm_halt(c.v, IO_MS))
		die(1, "working-set clone: %s", vmm_strerror());
	struct fork_ws ws;
	if (fork_ws_record(&ws, c.v->vm.mem.host, c.v->vm.mem.size))
		die(1, "%s", vmm_strerror());
	fork_vm_clone_destroy(&c);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/" FORK_WS_FILE, dir);
	if (fork_ws_save(&ws, path))
		die(1, "%s", vmm_strerror());
	fork_ws_free(&ws);
}

int main(int argc, char **argv)
{
	const char *kernel = NULL, *initrd = NULL, *json = NULL, *keep = NULL;
	unsigned mem_mib = 256, nclones = 0, nresets = 100;
	static const struct option lo[] = {
		{"kernel", 1, 0, 'k'}, {"initrd", 1, 0, 'i'}, {"mem", 1, 0, 'm'},
		{"clones", 1, 0, 'n'}, {"json", 1, 0, 'j'}, {"keep-dir", 1, 0, 'K'},
		{"resets", 1, 0, 'r'}, {0, 0, 0, 0}};
	for (int o; (o = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
		switch (o) {
		case 'k': kernel = optarg; break;
		case 'i': initrd = optarg; break;
		case 'm': mem_mib = (unsigned)atoi(optarg); break;
		case 'n': nclones = (unsigned)atoi(optarg); break;
		case 'j': json = optarg; break;
		case 'K': keep = optarg; break;
		case 'r': nresets = (unsigned)atoi(optarg); break;
		default: die(2, "usage: see the head of bench/fork_bench.c");
		}
	}
	if (!kernel || !initrd || !json || nclones < 2 || mem_mib < 64)
		die(2, "usage: uf-bench-fork --kernel K --initrd I [--mem MiB] --clones N (>= 2) "
		       "--json OUT [--keep-dir D] [--resets N]");

	char dir[PATH_MAX];
	if (keep) {
		if (mkdir(keep, 0755) < 0 && errno != EEXIST)
			die(1, "mkdir %s: %s", keep, strerror(errno));
		snprintf(dir, sizeof(dir), "%s/template", keep);
	} else {
		char tmp[] = "/tmp/uf-bench-fork.XXXXXX";
		if (!mkdtemp(tmp))
			die(1, "mkdtemp: %s", strerror(errno));
		snprintf(dir, sizeof(dir), "%s/template", tmp);
	}
	make_template(kernel, initrd, (uint64_t)mem_mib << 20, dir);

	struct fork_vm_template t;
	struct fork_vm_pool pool;
	struct vmm_vm_config cfg = {.console_fd = -1};
	if (fork_vm_template_open(&t, dir, &(struct snap_expect){0}))
		die(1, "template: %s", vmm_strerror());
	fork_vm_template_config(&t, &cfg);
	if (fork_vm_pool_init(&pool, &cfg, 2))
		die(1, "shell pool: %s", vmm_strerror());
	record_ws(&pool, &t, dir);
	fork_vm_template_close(&t);
	if (fork_vm_template_open(&t, dir, &(struct snap_expect){0}) || !t.ws.n)
		die(1, "template with its working set: %s", vmm_strerror());

	struct series plain, pre, reset;
	series_init(&plain, nclones);
	series_init(&pre, nclones);
	series_init(&reset, nresets);
	uint64_t *priv = calloc(nclones, sizeof(*priv));
	size_t npriv = 0;
	unsigned failed = 0;
	if (!priv)
		die(1, "out of memory");
	/* Let the filler build its shells before the clock starts. */
	usleep(200000);
	for (unsigned i = 0; i < nclones; i++) {
		unsigned flags = i % 2 ? FORK_VM_PREFETCH : 0;
		struct fork_vm_clone c;
		struct fork_vm_times tm;
		uint64_t first;
		if (fork_vm_clone_start(&c, &pool, &t, flags, &tm) || echo(c.fd, i + 2, &first)) {
			fprintf(stderr, "uf-bench-fork: clone %u: %s\n", i, vmm_strerror());
			fork_vm_clone_destroy(&c);
			failed++;
			continue;
		}
		series_add(flags ? &pre : &plain, &tm, first);
		struct fork_mem_usage u;
		if (!flags && fork_vm_clone_mem_usage(&c, &u) == 0)
			priv[npriv++] = u.anon_kib;
		fork_vm_clone_destroy(&c);
		if ((i + 1) % 100 == 0)
			fprintf(stderr, "uf-bench-fork: %u clones\n", i + 1);
	}
	if (nresets) {
		struct fork_vm_clone c;
		uint64_t first;
		if (fork_vm_clone_start(&c, &pool, &t, 0, NULL) || echo(c.fd, 1, &first))
			die(1, "reset clone: %s", vmm_strerror());
		for (unsigned i = 0; i < nresets; i++) {
			struct fork_vm_times tm;
			if (fork_vm_clone_reset(&c, 0, &tm) || echo(c.fd, i + 3, &first))
				die(1, "reset %u: %s", i, vmm_strerror());
			series_add(&reset, &tm, first);
		}
		fork_vm_clone_destroy(&c);
	}
	struct fork_vm_pool_stats ps;
	fork_vm_pool_get_stats(&pool, &ps);

	FILE *f = fopen(json, "w");
	if (!f)
		die(1, "%s: %s", json, strerror(errno));
	qsort(priv, npriv, sizeof(*priv), cmp_u64);
	const char *mode = getenv("UNIFORK_KVM_MODE");
	fprintf(f, "{\"clones\": %u, \"failed\": %u, \"mode\": \"%s\", \"mem_mib\": %u,\n \"us\": ",
		nclones, failed, mode ? mode : "unknown", mem_mib);
	series_json(f, &plain);
	fprintf(f, ",\n \"prefetch\": ");
	series_json(f, &pre);
	fprintf(f, ",\n \"reset\": ");
	series_json(f, &reset);
	fprintf(f, ",\n \"samples\": {\"plain\": %zu, \"prefetch\": %zu, \"reset\": %zu}", plain.n,
		pre.n, reset.n);
	fprintf(f, ",\n \"private_kib\": {\"p50\": %llu, \"max\": %llu}",
		(unsigned long long)pct(priv, npriv, 50),
		(unsigned long long)(npriv ? priv[npriv - 1] : 0));
	fprintf(f, ",\n \"working_set_pages\": %llu, \"working_set_written_pages\": %llu",
		(unsigned long long)t.ws.pages, (unsigned long long)t.ws.written_pages);
	fprintf(f, ",\n \"snapshot_bytes\": %llu",
		(unsigned long long)t.img.mem_file_alloc);
	fprintf(f, ",\n \"pool\": {\"built\": %llu, \"taken\": %llu, \"misses\": %llu}}\n",
		(unsigned long long)ps.built, (unsigned long long)ps.taken,
		(unsigned long long)ps.misses);
	if (fclose(f))
		die(1, "%s: %s", json, strerror(errno));
	fork_vm_pool_release(&pool);
	fork_vm_template_close(&t);
	if (!keep) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf %.*s", (int)(strrchr(dir, '/') - dir), dir);
		if (system(cmd) != 0)
			fprintf(stderr, "uf-bench-fork: could not remove the template\n");
	}
	return failed ? 1 : 0;
}
