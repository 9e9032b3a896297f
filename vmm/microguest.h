/* microguest.h — a kernel-less guest for host-side measurement: identity
 * page tables, a GDT with flat 64-bit user segments and a TSS, and a page of
 * CPL3 code that answers requests through exits.  No IDT, no interrupts
 * (RFLAGS.IF = 0), no guest CPL0 code at all: on kvm-pvm (guest CPL0 is
 * emulated at ~1 MIPS) everything the guest runs, runs natively at CPL3.
 * Any guest exception therefore ends in a triple fault (KVM_EXIT_SHUTDOWN),
 * which is how a broken micro-guest shows up.
 *
 * Protocol.  The guest loops: read the request in the mailbox (guest-physical
 * VMM_MG_MBOX), compute, answer through an exit, repeat.  An idle mailbox
 * (op VMM_MG_OP_HELLO) answers VMM_MG_HELLO and writes nothing, so the first
 * exit of a fresh guest, or of a clone, is the "hello" answer and touches
 * guest memory read-only.  Any other op stores the result in the mailbox,
 * sets op back to HELLO and answers the result.  The host writes a request
 * while the vCPU is stopped in an exit (vmm_mg_request()) and runs it again.
 *
 * Answer exits: an 8-byte store to VMM_MG_ANSWER_GPA (no memslot there, so
 * KVM_EXIT_MMIO) or, in VMM_MG_ANSWER_PIO mode, `outl %eax` to
 * VMM_MG_ANSWER_PORT with RFLAGS.IOPL = 3 (KVM_EXIT_IO, low 32 bits of the
 * answer).  On kvm-pvm only MMIO works: see microguest.c.
 *
 * Memory layout (guest-physical = guest-virtual):
 *   0x1000 PML4   0x2000 PDPT   0x3000 PD [0,1 GiB)   0x4000 PD [3,4 GiB)
 *   0x5000 PT for [0, 2 MiB) in 4 KiB pages
 *   0x6000 GDT + TSS (supervisor-only)
 *   0x7000 mailbox (user, RW)   0x8000 code (user, RO)   0x9000 stack (user, RW)
 *   [VMM_MG_DATA_BASE, mem_size) user RW data in 2 MiB pages: what
 *   VMM_MG_OP_TOUCH / READ_PAGES / WRITE / READ address.
 * Of the first 2 MiB only the GDT/TSS, mailbox, code and stack pages are
 * mapped (the page tables need no mapping).  Accessed/dirty bits are preset
 * in every entry and descriptor, so the guest never writes its tables: a
 * clone's first answer reads 8 template pages and copies none.
 */
#ifndef VMM_MICROGUEST_H
#define VMM_MICROGUEST_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define VMM_MG_PAGE         4096ull
#define VMM_MG_MEM_MIN      (4ull << 20)
#define VMM_MG_MEM_MAX      (1ull << 30)

#define VMM_MG_PML4         0x1000ull
#define VMM_MG_PDPT         0x2000ull
#define VMM_MG_PD_LOW       0x3000ull
#define VMM_MG_PD_MMIO      0x4000ull
#define VMM_MG_PT0          0x5000ull
#define VMM_MG_GDT          0x6000ull
#define VMM_MG_TSS          0x6100ull
#define VMM_MG_MBOX         0x7000       /* no suffix: also used in inline asm */
#define VMM_MG_CODE         0x8000ull
#define VMM_MG_STACK        0x9000ull
#define VMM_MG_DATA_BASE    0x200000ull

/* Answer exits go here: above RAM, outside every memslot and clear of the
 * VMM's virtio window (0xd0000000) and the IOAPIC/LAPIC pages. */
#define VMM_MG_ANSWER_GPA   0xc0000000   /* no suffix: also used in inline asm */
#define VMM_MG_ANSWER_PORT  0xf0

/* GDT selectors. */
#define VMM_MG_SEL_UCODE    0x1b        /* 0x18 | RPL 3 */
#define VMM_MG_SEL_UDATA    0x23        /* 0x20 | RPL 3 */
#define VMM_MG_SEL_TSS      0x28

#define VMM_MG_HELLO        0x48454c4c   /* "HELL"; no suffix: used in asm */
#define VMM_MG_BAD_OP       0xffffffffffffffffull

enum vmm_mg_op {
	VMM_MG_OP_HELLO = 0,      /* answer VMM_MG_HELLO; writes nothing */
	VMM_MG_OP_ECHO = 1,       /* result = vmm_mg_echo(arg) */
	VMM_MG_OP_WRITE = 2,      /* *(u64 *)addr = arg; result = arg */
	VMM_MG_OP_READ = 3,       /* result = *(u64 *)addr */
	VMM_MG_OP_TOUCH = 4,      /* write arg to the first u64 of `count` pages
				   * from addr; result = count */
	VMM_MG_OP_READ_PAGES = 5, /* result = sum of the first u64 of `count`
				   * pages from addr (read faults only) */
};

/* The mailbox at VMM_MG_MBOX; little-endian u64s. */
struct vmm_mg_mbox {
	uint64_t op;
	uint64_t arg;
	uint64_t addr;
	uint64_t count;
	uint64_t result;
};

enum vmm_mg_answer_mode {
	VMM_MG_ANSWER_MMIO = 0,
	VMM_MG_ANSWER_PIO = 1,
};

static inline uint64_t vmm_mg_echo(uint64_t arg)
{
	return arg * 3 + 1;
}

/* Lay the micro-guest out in `mem` (host view of guest-physical [0,
 * mem_size), zeroed by the caller; mem_size a multiple of 2 MiB within
 * [VMM_MG_MEM_MIN, VMM_MG_MEM_MAX]).  0 or -EINVAL. */
int vmm_mg_layout(uint8_t *mem, uint64_t mem_size, enum vmm_mg_answer_mode mode)
	__attribute__((warn_unused_result));

/* The entry vCPU state: *regs is overwritten; *sregs must hold the vCPU's
 * current state (KVM_GET_SREGS) and gets long mode, paging, the CPL3
 * segments, TR and an empty IDT.  Pure: no ioctl. */
void vmm_mg_cpu_state(enum vmm_mg_answer_mode mode, struct kvm_regs *regs,
		      struct kvm_sregs *sregs);

/* Post a request into the mailbox (mem = host view of guest-physical 0,
 * mem_size bytes).  Addresses are checked against the data area:
 * -EINVAL when [addr, addr + count pages) is not inside it. */
int vmm_mg_request(uint8_t *mem, uint64_t mem_size, enum vmm_mg_op op, uint64_t arg,
		   uint64_t addr, uint64_t count) __attribute__((warn_unused_result));

/* Decode the exit in `run`: 0 with *answer when it is an answer exit in
 * `mode`; -EIO with vmm_err() context for anything else (a triple fault is
 * a guest crash, an unexpected MMIO/IO address is a protocol error). */
int vmm_mg_answer(const struct kvm_run *run, enum vmm_mg_answer_mode mode, uint64_t *answer)
	__attribute__((warn_unused_result));

/* Name of an exit reason, for messages. */
const char *vmm_mg_exit_name(uint32_t exit_reason);

#endif
