/* test_vm_pool.c — Linux VM shells (forker/vm_pool.h) and working sets
 * (forker/ws.h) on this host: shells are built ahead and handed out, the
 * parked vCPU thread runs and halts a VM on request, given-back shells are
 * torn down by the filler; working sets record exactly the pages touched,
 * survive a save/load round trip, and damaged files are refused. */
#include "tests/unit/ut.h"
#include "forker/cow.h"
#include "forker/vm_pool.h"
#include "forker/ws.h"
#include "vmm/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM (32ull << 20)

static void pool_init(struct fork_vm_pool *p, unsigned target)
{
	struct vmm_vm_config cfg = {.mem_size = MEM, .console_fd = -1, .vsock_cid = 3};
	if (fork_vm_pool_init(p, &cfg, target))
		UT_FAIL("VM pool on /dev/kvm: %s (these tests need KVM: hardware or kvm-pvm)",
			vmm_strerror());
}

static void wait_idle(struct fork_vm_pool *p, unsigned n)
{
	struct fork_vm_pool_stats st;
	for (int i = 0; i < 5000; i++) {
		fork_vm_pool_get_stats(p, &st);
		if (st.idle >= n)
			return;
		usleep(1000);
	}
	UT_FAIL("the filler did not build %u idle shells (has %u)", n, st.idle);
}

UT_TEST(vm_pool_keeps_target_idle_shells)
{
	struct fork_vm_pool p;
	pool_init(&p, 3);
	wait_idle(&p, 3);
	struct fork_vm *a = fork_vm_take(&p, &(int){0}), *b = fork_vm_take(&p, &(int){0});
	UT_ASSERT(a && b && a != b);
	UT_ASSERT(a->vm.vsock && a->vm.mem.size == MEM);
	wait_idle(&p, 3);               /* refilled behind our back */
	fork_vm_put(a);
	fork_vm_put(b);
	struct fork_vm_pool_stats st;
	for (int i = 0; i < 5000; i++) {
		fork_vm_pool_get_stats(&p, &st);
		if (st.destroyed == 2)
			break;
		usleep(1000);
	}
	UT_EQ(st.destroyed, 2);
	UT_EQ(st.taken, 2);
	UT_EQ(st.misses, 0);
	fork_vm_pool_release(&p);
}

UT_TEST(vm_pool_empty_pool_builds_on_demand)
{
	struct fork_vm_pool p;
	pool_init(&p, 0);
	int err = 0;
	struct fork_vm *a = fork_vm_take(&p, &err);    /* the one built at init */
	struct fork_vm *b = fork_vm_take(&p, &err);    /* a miss: built now */
	UT_ASSERT(a && b);
	struct fork_vm_pool_stats st;
	fork_vm_pool_get_stats(&p, &st);
	UT_EQ(st.misses, 1);
	fork_vm_put(a);
	fork_vm_put(b);
	fork_vm_pool_release(&p);
	UT_EQ(p.st.destroyed, 2);
}

/* A VM of zeroed memory runs (it executes zeros: add [rax], al) until told
 * to halt; halt parks it, and it can run and halt again. */
UT_TEST(vm_pool_run_and_halt)
{
	struct fork_vm_pool p;
	pool_init(&p, 0);
	struct fork_vm *v = fork_vm_take(&p, &(int){0});
	UT_ASSERT(v);
	UT_EQ(fork_vm_halt(v, 1000), 0);        /* never ran: nothing to stop */
	for (int round = 0; round < 3; round++) {
		fork_vm_run(v);
		for (int i = 0; i < 2000 && !v->vm.t_first_run; i++)
			usleep(1000);
		UT_ASSERT(v->vm.t_first_run != 0);
		struct vmm_exit ex;
		if (fork_vm_exited(v, &ex) && ex.kind != VMM_EXIT_CRASH)
			UT_FAIL("round %d: the VM ended by itself: %s", round, ex.detail);
		if (fork_vm_halt(v, 10000))
			UT_FAIL("%s", vmm_strerror());
		UT_ASSERT(!v->in_run);
		UT_EQ(v->runs, (uint64_t)round + 1);
		v->vm.t_first_run = 0;
	}
	fork_vm_put(v);
	fork_vm_pool_release(&p);
}

/* 0: page not in the working set, 1: read, 2: written. */
static int page_kind(const struct fork_ws *ws, uint32_t page)
{
	for (size_t i = 0; i < ws->n; i++)
		if (page >= ws->r[i].first && page - ws->r[i].first < ws->r[i].pages)
			return ws->r[i].written ? 2 : 1;
	return 0;
}

#define WS_MEM (1024 * 4096)

/* A private mapping of a 4 MiB memfd: pages 3..5 read, page 900 written. */
UT_TEST(ws_records_read_and_written_pages)
{
	struct fork_template t;
	uint8_t *img;
	UT_EQ(fork_template_create(&t, WS_MEM, &img), 0);
	memset(img, 0x5a, WS_MEM);
	UT_EQ(fork_template_seal(&t, img), 0);
	uint8_t *m = mmap(NULL, WS_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE, t.memfd, 0);
	UT_ASSERT(m != MAP_FAILED);
	volatile uint8_t sink = 0;
	for (int p = 3; p <= 5; p++)
		sink += m[p * 4096 + 1];
	m[900 * 4096] = 1;
	(void)sink;
	struct fork_ws ws;
	UT_EQ(fork_ws_record(&ws, m, WS_MEM), 0);
	/* Read faults on a file mapping also map some neighbours (the
	 * kernel's fault-around: 16 pages, or a large folio): those count as
	 * touched.  Writes copy one page. */
	UT_EQ(page_kind(&ws, 3), 1);
	UT_EQ(page_kind(&ws, 5), 1);
	UT_EQ(page_kind(&ws, 900), 2);
	for (uint32_t p = 512; p < 1024; p++)
		UT_EQ(page_kind(&ws, p), p == 900 ? 2 : 0);
	UT_ASSERT(ws.pages >= 4 && ws.pages <= 513);
	UT_EQ(ws.written_pages, 1);

	/* Round trip, then prefetch into a fresh mapping: the same pages. */
	char dir[] = "/tmp/uf-ws-XXXXXX", path[64];
	UT_ASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ws", dir);
	UT_EQ(fork_ws_save(&ws, path), 0);
	struct fork_ws back;
	UT_EQ(fork_ws_load(&back, path, WS_MEM), 0);
	UT_EQ(back.n, ws.n);
	UT_EQ(memcmp(back.r, ws.r, ws.n * sizeof(ws.r[0])), 0);
	uint8_t *m2 = mmap(NULL, WS_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE, t.memfd, 0);
	UT_ASSERT(m2 != MAP_FAILED);
	UT_EQ(fork_ws_prefetch(&back, m2, WS_MEM), 0);
	struct fork_ws again;
	UT_EQ(fork_ws_record(&again, m2, WS_MEM), 0);
	UT_EQ(again.n, ws.n);
	UT_EQ(memcmp(again.r, ws.r, ws.n * sizeof(ws.r[0])), 0);
	UT_EQ(m2[900 * 4096], 0x5a);              /* prefetched, not changed */

	/* Loaded for another RAM size: refused. */
	UT_EQ(fork_ws_load(&again, path, 2 * WS_MEM), -EBADMSG);
	UT_EQ(fork_ws_load(&again, "/nonexistent/ws", WS_MEM), -ENOENT);
	fork_ws_free(&ws);
	fork_ws_free(&back);
	unlink(path);
	rmdir(dir);
	munmap(m, WS_MEM);
	munmap(m2, WS_MEM);
	fork_template_release(&t);
}

static int write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	int r = write(fd, p, n) == (ssize_t)n ? 0 : -1;
	close(fd);
	return r;
}

UT_TEST(ws_damaged_files_are_refused)
{
	char dir[] = "/tmp/uf-ws-XXXXXX", path[64];
	UT_ASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ws", dir);
	struct fork_ws ws = {.mem_size = 16 * 4096};
	struct fork_ws_range r[2] = {{0, 4, 0}, {10, 6, 1}};
	ws.r = r;
	ws.n = 2;
	UT_EQ(fork_ws_save(&ws, path), 0);
	struct fork_ws got;
	UT_EQ(fork_ws_load(&got, path, 16 * 4096), 0);
	fork_ws_free(&got);

	uint8_t buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	UT_ASSERT(n == 24 + 2 * 12);
	/* truncated */
	UT_EQ(write_file(path, buf, (size_t)n - 1), 0);
	UT_EQ(fork_ws_load(&got, path, 16 * 4096), -EBADMSG);
	/* bad magic */
	uint8_t bad[64];
	memcpy(bad, buf, (size_t)n);
	bad[0] ^= 0xff;
	UT_EQ(write_file(path, bad, (size_t)n), 0);
	UT_EQ(fork_ws_load(&got, path, 16 * 4096), -EBADMSG);
	/* a range past the end of RAM (page 10 + 7 > 16) */
	memcpy(bad, buf, (size_t)n);
	bad[24 + 12 + 4] = 7;
	UT_EQ(write_file(path, bad, (size_t)n), 0);
	UT_EQ(fork_ws_load(&got, path, 16 * 4096), -EBADMSG);
	/* a count that does not match the size */
	memcpy(bad, buf, (size_t)n);
	bad[16] = 3;
	UT_EQ(write_file(path, bad, (size_t)n), 0);
	UT_EQ(fork_ws_load(&got, path, 16 * 4096), -EBADMSG);
	UT_ASSERT(got.r == NULL && got.n == 0);
	unlink(path);
	rmdir(dir);
}
