/* fork_micro.c — uf-bench-fork-micro: the host-side cost of a copy-on-write
 * KVM clone, measured with the kernel-less micro-guest, and its peer, fork(2)
 * of a process holding the same memory.  Driven by bench/fork-micro, which
 * runs both modes in interleaved batches and computes the percentiles.
 *
 *   uf-bench-fork-micro ours [-n N] [--mem-mib M] [--shells S] [--reps R]
 *   uf-bench-fork-micro peer [-n N] [--mem-mib M] [--reps R]
 *
 * Prints one JSON object of sample arrays (µs, or KiB for *_kib) on stdout.
 * Both sides hold M MiB of populated memory: every page of the template
 * memfd, every page of the peer's anonymous memory (4 KiB pages on both
 * sides: the peer's is MADV_NOHUGEPAGE).
 *
 * ours:  clone_* (N clones with restore by ioctls, N with sync_regs: take,
 *        map, restore, first exit, total; destroy; exit_hot_us = a second
 *        hello on the same clone, pages already mapped), reset_* (N resets of a
 *        clone that dirtied a page), touch<k>_page_us (R clones touching k
 *        pages: (TOUCH k request - ECHO request) / k, both after the
 *        mailbox was copied), read1024_page_us (the same reading 1024
 *        pages), mem_*_anon_kib (the clone's private copies).
 * peer:  fork_answer_us (fork -> the child's first byte on a pipe),
 *        fork_reap_us, fork_touch<k>_page_us (child answers, writes k
 *        pages, answers again: interval / k).
 */
#include "forker/cow.h"
#include "vmm/err.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SERIES 40
#define PAGE 4096ull

static const uint64_t touch_ks[] = {1, 64, 1024};

struct series {
	const char *name;
	double *v;
	size_t n, cap;
};

static struct series out[MAX_SERIES];
static int nout;

static void add(const char *name, double v)
{
	struct series *s = NULL;
	for (int i = 0; i < nout; i++)
		if (strcmp(out[i].name, name) == 0)
			s = &out[i];
	if (!s) {
		if (nout == MAX_SERIES) {
			fprintf(stderr, "fork-micro: too many series\n");
			exit(1);
		}
		s = &out[nout++];
		s->name = name;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = realloc(s->v, s->cap * sizeof(double));
		if (!s->v) {
			fprintf(stderr, "fork-micro: out of memory\n");
			exit(1);
		}
	}
	s->v[s->n++] = v;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void emit(void)
{
	printf("{");
	for (int i = 0; i < nout; i++) {
		printf("%s\n \"%s\": [", i ? "," : "", out[i].name);
		for (size_t j = 0; j < out[i].n; j++)
			printf("%s%.3f", j ? "," : "", out[i].v[j]);
		printf("]");
		free(out[i].v);
	}
	printf("\n}\n");
}

static void die(const char *what)
{
	fprintf(stderr, "fork-micro: %s: %s\n", what, vmm_strerror());
	exit(1);
}

/* A series name that outlives the caller's buffer (interned). */
static const char *intern(const char *s)
{
	static char names[32][48];
	static int used;
	for (int i = 0; i < used; i++)
		if (strcmp(names[i], s) == 0)
			return names[i];
	if (used == 32 || strlen(s) >= sizeof(names[0])) {
		fprintf(stderr, "fork-micro: series name table full\n");
		exit(1);
	}
	strcpy(names[used], s);
	return names[used++];
}

/* "<pre><k><suf>", interned. */
static const char *kname(const char *pre, uint64_t k, const char *suf)
{
	char buf[48];
	snprintf(buf, sizeof(buf), "%s%llu%s", pre, (unsigned long long)k, suf);
	return intern(buf);
}

static void mem_usage(struct fork_clone *c, const char *name)
{
	struct fork_mem_usage u;
	if (fork_clone_mem_usage(c, &u) < 0)
		die("mem usage");
	add(name, (double)u.anon_kib);
}

static void run_clones(struct fork_shell_pool *pool, struct fork_template *t, int n, unsigned flags)
{
	const char *pre = flags & FORK_SYNC_REGS ? "clone_sync" : "clone_ioctl";
	char nm[5][40];
	const char *part[5] = {"take", "map", "restore", "run", "total"};
	for (int i = 0; i < 5; i++)
		snprintf(nm[i], sizeof(nm[i]), "%s_%s_us", pre, part[i]);

	for (int i = 0; i < n; i++) {
		struct fork_clone c;
		struct fork_times tm;
		uint64_t a;
		if (fork_clone(&c, pool, t, flags, &a, &tm) < 0 || a != VMM_MG_HELLO)
			die("clone");
		/* The same exit again with every page already mapped: what
		 * of the first run was faults and what was the exit itself. */
		uint64_t t0 = vmm_now_ns();
		if (fork_clone_run(&c, &a) < 0 || a != VMM_MG_HELLO)
			die("second answer");
		add("exit_hot_us", us(vmm_now_ns() - t0));
		t0 = vmm_now_ns();
		fork_clone_destroy(&c);
		uint64_t t1 = vmm_now_ns();
		const uint64_t v[5] = {tm.take_ns, tm.map_ns, tm.restore_ns, tm.run_ns, tm.total_ns};
		for (int j = 0; j < 5; j++)
			add(intern(nm[j]), us(v[j]));
		add(flags & FORK_SYNC_REGS ? "destroy_sync_us" : "destroy_ioctl_us", us(t1 - t0));
	}
}

static void run_resets(struct fork_shell_pool *pool, struct fork_template *t, int n)
{
	struct fork_clone c;
	uint64_t a;
	if (fork_clone(&c, pool, t, FORK_SYNC_REGS, &a, NULL) < 0)
		die("clone for reset");
	for (int i = 0; i < n; i++) {
		struct fork_times tm;
		/* An invocation's worth of dirt: the mailbox and one data page. */
		if (fork_clone_request(&c, VMM_MG_OP_TOUCH, (uint64_t)i, VMM_MG_DATA_BASE, 1, &a) < 0)
			die("touch before reset");
		if (fork_clone_reset(&c, FORK_SYNC_REGS, &a, &tm) < 0 || a != VMM_MG_HELLO)
			die("reset");
		add("reset_madvise_us", us(tm.map_ns));
		add("reset_run_us", us(tm.run_ns));
		add("reset_total_us", us(tm.total_ns));
	}
	fork_clone_destroy(&c);
}

static void run_touches(struct fork_shell_pool *pool, struct fork_template *t, int reps)
{
	for (int r = 0; r < reps; r++) {
		for (size_t i = 0; i <= sizeof(touch_ks) / sizeof(touch_ks[0]); i++) {
			bool rd = i == sizeof(touch_ks) / sizeof(touch_ks[0]);
			uint64_t k = rd ? 1024 : touch_ks[i], a;
			struct fork_clone c;
			if (fork_clone(&c, pool, t, FORK_SYNC_REGS, &a, NULL) < 0)
				die("clone for touch");
			if (r == 0 && i == 0)
				mem_usage(&c, "mem_hello_anon_kib");
			/* Baseline: a request that touches no data page, once the
			 * mailbox page is the clone's own (the first request
			 * copies it, host and guest side). */
			if (fork_clone_request(&c, VMM_MG_OP_ECHO, 1, 0, 0, &a) < 0)
				die("echo");
			uint64_t t0 = vmm_now_ns();
			if (fork_clone_request(&c, VMM_MG_OP_ECHO, 2, 0, 0, &a) < 0)
				die("echo");
			uint64_t t1 = vmm_now_ns();
			if (fork_clone_request(&c, rd ? VMM_MG_OP_READ_PAGES : VMM_MG_OP_TOUCH, 1,
					       VMM_MG_DATA_BASE, k, &a) < 0)
				die("touch");
			uint64_t t2 = vmm_now_ns();
			double per = ((double)(t2 - t1) - (double)(t1 - t0)) / 1000.0 / (double)k;
			add(kname(rd ? "read" : "touch", k, "_page_us"), per);
			if (!rd)
				mem_usage(&c, kname("mem_touch", k, "_anon_kib"));
			fork_clone_destroy(&c);
		}
	}
}

static int ours(int n, uint64_t mem, unsigned shells, int reps)
{
	struct fork_shell_pool pool;
	struct fork_template t;
	uint8_t *img;

	if (fork_shell_pool_init(&pool, shells, mem) < 0)
		die("shell pool");
	struct fork_shell *sh = fork_shell_take(&pool);
	if (fork_template_create(&t, mem, &img) < 0 ||
	    fork_template_microguest(&t, img, sh, VMM_MG_ANSWER_MMIO) < 0)
		die("template");
	fork_shell_put(&pool, sh);
	for (uint64_t a = VMM_MG_DATA_BASE; a < mem; a += PAGE)
		memset(img + a, 0x5a, PAGE);      /* populate every page */
	if (fork_template_seal(&t, img) < 0)
		die("seal template");

	run_clones(&pool, &t, 20, FORK_SYNC_REGS);      /* warm-up, dropped */
	for (int i = 0; i < nout; i++)
		out[i].n = 0;
	run_clones(&pool, &t, n, 0);
	run_clones(&pool, &t, n, FORK_SYNC_REGS);
	run_resets(&pool, &t, n);
	run_touches(&pool, &t, reps);
	fork_template_release(&t);
	fork_shell_pool_release(&pool);
	return 0;
}

static void xwrite(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		_exit(3);
}

/* One fork; the child answers on `answer`, touches k pages (if any),
 * answers again, exits.  Fills the peer series. */
static void fork_once(uint8_t *mem, uint64_t mem_size, uint64_t k, int seq)
{
	int p[2];
	char c;
	if (pipe(p) < 0) {
		perror("pipe");
		exit(1);
	}
	uint64_t t0 = vmm_now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		xwrite(p[1], 'h');
		if (k) {
			for (uint64_t i = 0; i < k; i++)
				mem[(i * PAGE) % mem_size] = (uint8_t)seq;
			xwrite(p[1], 't');
		}
		_exit(0);
	}
	if (read(p[0], &c, 1) != 1)
		exit(1);
	uint64_t t1 = vmm_now_ns();
	if (k) {
		if (read(p[0], &c, 1) != 1)
			exit(1);
		add(kname("fork_touch", k, "_page_us"), us(vmm_now_ns() - t1) / (double)k);
	}
	uint64_t t2 = vmm_now_ns();
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "fork-micro: peer child failed\n");
		exit(1);
	}
	if (!k) {
		add("fork_answer_us", us(t1 - t0));
		add("fork_reap_us", us(vmm_now_ns() - t2));
	}
	close(p[0]);
	close(p[1]);
}

static int peer(int n, uint64_t mem_size, int reps)
{
	uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	(void)madvise(mem, mem_size, MADV_NOHUGEPAGE);
	memset(mem, 0x5a, mem_size);
	for (int i = 0; i < 20; i++)
		fork_once(mem, mem_size, 0, i);
	for (int i = 0; i < nout; i++)
		out[i].n = 0;
	for (int i = 0; i < n; i++)
		fork_once(mem, mem_size, 0, i);
	for (int r = 0; r < reps; r++)
		for (size_t i = 0; i < sizeof(touch_ks) / sizeof(touch_ks[0]); i++)
			fork_once(mem, mem_size, touch_ks[i], r);
	munmap(mem, mem_size);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 1000, reps = 20;
	unsigned shells = 8;
	uint64_t mem_mib = 128;

	if (argc < 2 || (strcmp(argv[1], "ours") && strcmp(argv[1], "peer"))) {
		fprintf(stderr, "usage: %s ours|peer [-n N] [--mem-mib M] [--shells S] [--reps R]\n",
			argv[0]);
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		long v = strtol(argv[i + 1], NULL, 10);
		if (v <= 0) {
			fprintf(stderr, "fork-micro: bad value for %s\n", argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "-n"))
			n = (int)v;
		else if (!strcmp(argv[i], "--mem-mib"))
			mem_mib = (uint64_t)v;
		else if (!strcmp(argv[i], "--shells"))
			shells = (unsigned)v;
		else if (!strcmp(argv[i], "--reps"))
			reps = (int)v;
		else {
			fprintf(stderr, "fork-micro: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	uint64_t mem = mem_mib << 20;
	if (mem < 8ull << 20 || mem > VMM_MG_MEM_MAX) {
		fprintf(stderr, "fork-micro: --mem-mib must be in [8, 1024]\n");
		return 2;
	}
	int rc = strcmp(argv[1], "ours") == 0 ? ours(n, mem, shells, reps) : peer(n, mem, reps);
	if (rc == 0)
		emit();
	return rc;
}
