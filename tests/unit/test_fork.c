/* test_fork.c — shells, copy-on-write clones, reset-in-place and clones of
 * clones (forker/) with the micro-guest on this host's /dev/kvm.  No usable
 * /dev/kvm is a failure, not a skip. */
#include "tests/unit/ut.h"
#include "forker/cow.h"
#include "vmm/err.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM   (16ull << 20)
#define SLOT_A (VMM_MG_DATA_BASE + 0x10000)   /* a data word the template sets */
#define A_VAL  0x7e3a91a7e0000001ull

static void pool_init(struct fork_shell_pool *p, unsigned n)
{
	if (fork_shell_pool_init(p, n, MEM) < 0)
		UT_FAIL("shell pool on /dev/kvm: %s (these tests need KVM: hardware or kvm-pvm)",
			vmm_strerror());
}

/* The micro-guest with `val` at SLOT_A and its first 64 data pages filled. */
static void template_init(struct fork_template *t, struct fork_shell_pool *p, uint64_t val)
{
	uint8_t *img;
	struct fork_shell *sh = fork_shell_take(p);
	UT_ASSERT(sh != NULL);
	if (fork_template_create(t, MEM, &img) < 0 ||
	    fork_template_microguest(t, img, sh, VMM_MG_ANSWER_MMIO) < 0)
		UT_FAIL("%s", vmm_strerror());
	fork_shell_put(p, sh);
	for (int i = 0; i < 64; i++)
		memset(img + VMM_MG_DATA_BASE + i * 4096ull, 0x11, 4096);
	memcpy(img + SLOT_A, &val, 8);
	if (fork_template_seal(t, img) < 0)
		UT_FAIL("%s", vmm_strerror());
}

static void clone_ok(struct fork_clone *c, struct fork_shell_pool *p, const struct fork_template *t,
		     unsigned flags)
{
	uint64_t a = 0;
	if (fork_clone(c, p, t, flags, &a, NULL) < 0)
		UT_FAIL("clone: %s", vmm_strerror());
	UT_EQ(a, VMM_MG_HELLO);
}

static uint64_t ask(struct fork_clone *c, enum vmm_mg_op op, uint64_t arg, uint64_t addr, uint64_t n)
{
	uint64_t a = 0;
	if (fork_clone_request(c, op, arg, addr, n, &a) < 0)
		UT_FAIL("request %d: %s", (int)op, vmm_strerror());
	return a;
}

static uint64_t file_word(const struct fork_template *t, uint64_t off)
{
	uint64_t v = 0;
	UT_EQ(pread(t->memfd, &v, 8, (off_t)off), 8);
	return v;
}

/* The memslot stays registered while the range under it is replaced: the
 * guest sees the new pages (KVM's MMU notifier), with no ioctl between. */
UT_TEST(fork_memslot_follows_mmap_fixed)
{
	struct fork_shell_pool p;
	struct fork_template ta, tb;
	struct fork_clone c;
	pool_init(&p, 1);
	template_init(&ta, &p, 0xaaaa);
	template_init(&tb, &p, 0xbbbb);

	clone_ok(&c, &p, &ta, 0);
	UT_EQ(ask(&c, VMM_MG_OP_READ, 0, SLOT_A, 1), 0xaaaa);
	/* Replace the memory under the running clone: same addresses. */
	void *m = mmap(c.mem, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, tb.memfd, 0);
	UT_ASSERT(m == c.mem);
	UT_EQ(ask(&c, VMM_MG_OP_READ, 0, SLOT_A, 1), 0xbbbb);
	fork_clone_destroy(&c);

	/* The same shell (pool of one), next clone from the other template. */
	clone_ok(&c, &p, &tb, 0);
	UT_EQ(ask(&c, VMM_MG_OP_READ, 0, SLOT_A, 1), 0xbbbb);
	struct fork_shell *sh = c.shell;
	fork_clone_destroy(&c);
	/* A returned shell's range is PROT_NONE: the guest cannot run on it.
	 * Hardware KVM fails KVM_RUN with EFAULT; kvm-pvm reflects the failed
	 * fault into the guest, which (no IDT) triple-faults. */
	int r = ioctl(sh->vcpu.fd, KVM_RUN, 0);
	UT_ASSERT((r == -1 && errno == EFAULT) ||
		  (r == 0 && sh->vcpu.run->exit_reason == KVM_EXIT_SHUTDOWN));
	fork_template_release(&ta);
	fork_template_release(&tb);
	fork_shell_pool_release(&p);
}

UT_TEST(fork_200_clones_all_answer)
{
	enum { N = 200 };
	static struct fork_clone c[N];
	struct fork_shell_pool p;
	struct fork_template t;
	pool_init(&p, N);
	template_init(&t, &p, A_VAL);
	for (int i = 0; i < N; i++)
		clone_ok(&c[i], &p, &t, i % 2 ? FORK_SYNC_REGS : 0);
	UT_ASSERT(fork_shell_take(&p) == NULL);     /* all 200 alive at once */
	for (int i = 0; i < N; i++) {
		UT_EQ(ask(&c[i], VMM_MG_OP_ECHO, (uint64_t)i, 0, 0), vmm_mg_echo((uint64_t)i));
		UT_EQ(ask(&c[i], VMM_MG_OP_WRITE, (uint64_t)i, SLOT_A, 1), i);
	}
	for (int i = 0; i < N; i++)
		UT_EQ(ask(&c[i], VMM_MG_OP_READ, 0, SLOT_A, 1), i);
	for (int i = 0; i < N; i++)
		fork_clone_destroy(&c[i]);
	UT_EQ(p.nfree, N);
	UT_EQ(file_word(&t, SLOT_A), A_VAL);
	fork_template_release(&t);
	fork_shell_pool_release(&p);
}

UT_TEST(fork_write_is_private_to_the_clone)
{
	struct fork_shell_pool p;
	struct fork_template t;
	struct fork_clone a, b;
	pool_init(&p, 2);
	template_init(&t, &p, A_VAL);
	clone_ok(&a, &p, &t, 0);
	clone_ok(&b, &p, &t, 0);

	UT_EQ(ask(&a, VMM_MG_OP_WRITE, 0x5eed, SLOT_A, 1), 0x5eed);
	UT_EQ(ask(&a, VMM_MG_OP_TOUCH, 0x99, VMM_MG_DATA_BASE, 8), 8);
	UT_EQ(ask(&b, VMM_MG_OP_READ, 0, SLOT_A, 1), A_VAL);
	UT_EQ(ask(&b, VMM_MG_OP_READ, 0, VMM_MG_DATA_BASE, 1), 0x1111111111111111ull);
	UT_EQ(ask(&a, VMM_MG_OP_READ, 0, SLOT_A, 1), 0x5eed);
	uint64_t v;
	memcpy(&v, a.mem + SLOT_A, 8);
	UT_EQ(v, 0x5eed);
	memcpy(&v, b.mem + SLOT_A, 8);
	UT_EQ(v, A_VAL);
	/* The template file: untouched, and sealed against writers. */
	UT_EQ(file_word(&t, SLOT_A), A_VAL);
	UT_EQ(file_word(&t, VMM_MG_DATA_BASE), 0x1111111111111111ull);
	UT_ASSERT(mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, t.memfd, 0) == MAP_FAILED);
	UT_EQ(pwrite(t.memfd, &v, 8, 0), -1);
	fork_clone_destroy(&a);
	fork_clone_destroy(&b);
	fork_template_release(&t);
	fork_shell_pool_release(&p);
}

UT_TEST(fork_reset_in_place_restores_the_template)
{
	struct fork_shell_pool p;
	struct fork_template t;
	struct fork_clone c;
	struct fork_mem_usage u0, u1, u2;
	uint64_t a = 0;
	pool_init(&p, 1);
	template_init(&t, &p, A_VAL);
	clone_ok(&c, &p, &t, 0);
	UT_EQ(fork_clone_mem_usage(&c, &u0), 0);
	UT_EQ(ask(&c, VMM_MG_OP_WRITE, 1, SLOT_A, 1), 1);
	UT_EQ(ask(&c, VMM_MG_OP_TOUCH, 2, VMM_MG_DATA_BASE + 0x100000, 200), 200);
	UT_EQ(fork_clone_mem_usage(&c, &u1), 0);
	UT_ASSERT(u1.anon_kib >= u0.anon_kib + 200 * 4);
	for (unsigned flags = 0; flags <= FORK_SYNC_REGS; flags++) {
		struct fork_times tm;
		if (fork_clone_reset(&c, flags, &a, &tm) < 0)
			UT_FAIL("reset: %s", vmm_strerror());
		UT_EQ(a, VMM_MG_HELLO);
		UT_ASSERT(tm.total_ns > 0 && tm.take_ns == 0);
		UT_EQ(fork_clone_mem_usage(&c, &u2), 0);
		UT_EQ(u2.anon_kib, 0);     /* hello reads, writes nothing */
		UT_EQ(ask(&c, VMM_MG_OP_READ, 0, SLOT_A, 1), A_VAL);
		UT_EQ(ask(&c, VMM_MG_OP_READ, 0, VMM_MG_DATA_BASE + 0x100000, 1), 0);
		UT_EQ(ask(&c, VMM_MG_OP_WRITE, 3, SLOT_A, 1), 3);
	}
	fork_clone_destroy(&c);
	fork_template_release(&t);
	fork_shell_pool_release(&p);
}

UT_TEST(fork_clone_of_a_clone)
{
	struct fork_shell_pool p;
	struct fork_template t, t2;
	struct fork_clone parent, child;
	const uint64_t slot_b = VMM_MG_DATA_BASE + 0x300000;
	pool_init(&p, 3);
	template_init(&t, &p, A_VAL);
	clone_ok(&parent, &p, &t, 0);
	UT_EQ(ask(&parent, VMM_MG_OP_WRITE, 0xc1, SLOT_A, 1), 0xc1);
	if (fork_template_from_clone(&t2, &parent) < 0)
		UT_FAIL("template from clone: %s", vmm_strerror());
	/* The child template: the parent's view, sparse where the parent's was. */
	UT_EQ(file_word(&t2, SLOT_A), 0xc1);
	UT_EQ(file_word(&t2, VMM_MG_DATA_BASE + 8), 0x1111111111111111ull);
	off_t d = lseek(t2.memfd, (off_t)slot_b, SEEK_DATA);
	UT_ASSERT(d < 0 || d > (off_t)slot_b);

	clone_ok(&child, &p, &t2, FORK_SYNC_REGS);
	UT_EQ(ask(&child, VMM_MG_OP_READ, 0, SLOT_A, 1), 0xc1);
	UT_EQ(ask(&child, VMM_MG_OP_WRITE, 0xc2, slot_b, 1), 0xc2);
	/* The parent runs on, unaffected, and its writes stay its own. */
	UT_EQ(ask(&parent, VMM_MG_OP_READ, 0, slot_b, 1), 0);
	UT_EQ(ask(&parent, VMM_MG_OP_WRITE, 0xc3, SLOT_A, 1), 0xc3);
	UT_EQ(ask(&child, VMM_MG_OP_READ, 0, SLOT_A, 1), 0xc1);
	uint64_t a;
	UT_EQ(fork_clone_reset(&child, 0, &a, NULL), 0);
	UT_EQ(a, VMM_MG_HELLO);
	UT_EQ(ask(&child, VMM_MG_OP_READ, 0, SLOT_A, 1), 0xc1);
	UT_EQ(ask(&child, VMM_MG_OP_READ, 0, slot_b, 1), 0);
	UT_EQ(file_word(&t, SLOT_A), A_VAL);
	fork_clone_destroy(&child);
	fork_clone_destroy(&parent);
	fork_template_release(&t2);
	fork_template_release(&t);
	fork_shell_pool_release(&p);
}

/* A clone that touches k pages costs about k private pages. */
UT_TEST(fork_clone_memory_grows_by_touched_pages)
{
	struct fork_shell_pool p;
	struct fork_template t;
	struct fork_clone c;
	struct fork_mem_usage u0, u1;
	pool_init(&p, 1);
	template_init(&t, &p, A_VAL);
	clone_ok(&c, &p, &t, 0);
	UT_EQ(fork_clone_mem_usage(&c, &u0), 0);
	UT_ASSERT(u0.rss_kib <= 8 * 4);            /* hello: mailbox + code */
	UT_EQ(u0.anon_kib, 0);
	const uint64_t k = 512;
	UT_EQ(ask(&c, VMM_MG_OP_TOUCH, 1, VMM_MG_DATA_BASE, k), k);
	UT_EQ(fork_clone_mem_usage(&c, &u1), 0);
	uint64_t grown = u1.anon_kib - u0.anon_kib;
	/* k data pages plus the mailbox page (host request + guest reply). */
	UT_ASSERT(grown >= k * 4 && grown <= (k + 2) * 4);
	UT_ASSERT(u1.rss_kib - u0.rss_kib <= (k + 2) * 4);
	fork_clone_destroy(&c);
	fork_template_release(&t);
	fork_shell_pool_release(&p);
}

UT_TEST(fork_pool_runs_dry_and_refills)
{
	struct fork_shell_pool p;
	struct fork_template t;
	struct fork_clone a, b;
	uint64_t ans;
	pool_init(&p, 1);
	template_init(&t, &p, A_VAL);
	clone_ok(&a, &p, &t, 0);
	UT_EQ(fork_clone(&b, &p, &t, 0, &ans, NULL), -EAGAIN);
	UT_EQ(p.misses, 1);
	fork_clone_destroy(&a);
	clone_ok(&b, &p, &t, 0);
	fork_clone_destroy(&b);
	struct fork_template big;
	uint8_t *img;
	UT_EQ(fork_template_create(&big, 2 * MEM, &img), 0);
	UT_EQ(fork_template_seal(&big, img), 0);
	UT_EQ(fork_clone(&b, &p, &big, 0, &ans, NULL), -EINVAL);   /* size mismatch */
	UT_EQ(p.nfree, 1);
	fork_template_release(&big);
	fork_template_release(&t);
	fork_shell_pool_release(&p);
}
