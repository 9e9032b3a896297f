/* microguest.c — layout, entry state and exit decoding of the kernel-less
 * CPL3 micro-guest (contract in microguest.h).
 *
 * Why MMIO answers by default: on kvm-pvm a guest `out` at CPL3 never
 * reaches the VMM as KVM_EXIT_IO, even with RFLAGS.IOPL = 3 (KVM accepts and
 * keeps IOPL 3).  Measured: the `out` raises #GP (vector 13), which pvm
 * reflects into the guest, whose empty IDT turns it into a triple fault.
 * PVM runs guest user code in hardware ring 3 of the host, where the host's
 * IOPL and I/O bitmap apply, not the guest's, and it does not emulate the
 * faulting port access on the guest's behalf.  A store to a guest-physical
 * address with no memslot behind it instead takes KVM's MMIO path (shadow-
 * MMU fault on pvm, EPT misconfiguration on hardware), which emulates the
 * instruction and exits with KVM_EXIT_MMIO on both.
 * tests/unit/test_microguest.c keeps both facts measured.
 */
#include "vmm/microguest.h"
#include "vmm/err.h"

#include <errno.h>
#include <string.h>

#define MG_STR_(x) #x
#define MG_STR(x) MG_STR_(x)

/* Page-table entry bits.  Accessed and dirty are preset so that neither the
 * CPU nor KVM's shadow walker ever writes a guest page table: a write would
 * cost every clone a copy-on-write fault on the table's page. */
#define PTE_P    0x001ull
#define PTE_RW   0x002ull
#define PTE_US   0x004ull
#define PTE_A    0x020ull
#define PTE_D    0x040ull
#define PTE_PS   0x080ull
#define PTE_TABLE (PTE_P | PTE_RW | PTE_US | PTE_A)
#define TWO_MIB  (2ull << 20)

/* The guest code, once per answer mode.  Mailbox offsets follow struct
 * vmm_mg_mbox: op 0, arg 8, addr 16, count 24, result 32.  Absolute
 * addresses below 2 GiB use the disp32 form; the MMIO answer address does
 * not fit a sign-extended disp32, so it goes through %rdi. */
#define MG_MBOX_OP     MG_STR(VMM_MG_MBOX)
#define MG_MBOX_ARG    "0x7008"
#define MG_MBOX_ADDR   "0x7010"
#define MG_MBOX_COUNT  "0x7018"
#define MG_MBOX_RESULT "0x7020"
_Static_assert(VMM_MG_MBOX == 0x7000, "mailbox offsets in the guest code");

#define MG_ANSWER_MMIO "movl $" MG_STR(VMM_MG_ANSWER_GPA) ", %edi\n movq %rax, (%rdi)\n"
#define MG_ANSWER_PIO  "outl %eax, $" MG_STR(VMM_MG_ANSWER_PORT) "\n"

#define MG_CODE(P, ANSWER)                                                    \
	".pushsection .rodata\n"                                              \
	".balign 16\n"                                                        \
	".code64\n"                                                           \
	P "_start:\n"                                                         \
	P "_loop:\n"                                                          \
	"  movq " MG_MBOX_OP ", %rax\n"                                       \
	"  testq %rax, %rax\n"                                                \
	"  jnz " P "_req\n"                                                   \
	"  movl $" MG_STR(VMM_MG_HELLO) ", %eax\n"                            \
	ANSWER                                                                \
	"  jmp " P "_loop\n"                                                  \
	P "_req:\n"                                                           \
	"  movq " MG_MBOX_ARG ", %rbx\n"                                      \
	"  movq " MG_MBOX_ADDR ", %rsi\n"                                     \
	"  movq " MG_MBOX_COUNT ", %rcx\n"                                    \
	"  movq $-1, %rdx\n"                                                  \
	"  cmpq $1, %rax\n  je " P "_echo\n"                                  \
	"  cmpq $2, %rax\n  je " P "_write\n"                                 \
	"  cmpq $3, %rax\n  je " P "_read\n"                                  \
	"  cmpq $4, %rax\n  je " P "_touch\n"                                 \
	"  cmpq $5, %rax\n  je " P "_rdpages\n"                               \
	"  jmp " P "_done\n"                                                  \
	P "_echo:\n"                                                          \
	"  leaq 1(%rbx,%rbx,2), %rdx\n"                                       \
	"  jmp " P "_done\n"                                                  \
	P "_write:\n"                                                         \
	"  movq %rbx, (%rsi)\n"                                               \
	"  movq %rbx, %rdx\n"                                                 \
	"  jmp " P "_done\n"                                                  \
	P "_read:\n"                                                          \
	"  movq (%rsi), %rdx\n"                                               \
	"  jmp " P "_done\n"                                                  \
	P "_touch:\n"                                                         \
	"  movq %rcx, %rdx\n"                                                 \
	P "_touch1:\n"                                                        \
	"  testq %rcx, %rcx\n"                                                \
	"  jz " P "_done\n"                                                   \
	"  movq %rbx, (%rsi)\n"                                               \
	"  addq $4096, %rsi\n"                                                \
	"  decq %rcx\n"                                                       \
	"  jmp " P "_touch1\n"                                                \
	P "_rdpages:\n"                                                       \
	"  xorl %edx, %edx\n"                                                 \
	P "_rdpages1:\n"                                                      \
	"  testq %rcx, %rcx\n"                                                \
	"  jz " P "_done\n"                                                   \
	"  addq (%rsi), %rdx\n"                                               \
	"  addq $4096, %rsi\n"                                                \
	"  decq %rcx\n"                                                       \
	"  jmp " P "_rdpages1\n"                                              \
	P "_done:\n"                                                          \
	"  movq %rdx, " MG_MBOX_RESULT "\n"                                   \
	"  movq $0, " MG_MBOX_OP "\n"                                         \
	"  movq %rdx, %rax\n"                                                 \
	ANSWER                                                                \
	"  jmp " P "_loop\n"                                                  \
	P "_end:\n"                                                           \
	".popsection\n"

__asm__(MG_CODE("vmm_mg_mmio", MG_ANSWER_MMIO));
__asm__(MG_CODE("vmm_mg_pio", MG_ANSWER_PIO));

extern const uint8_t vmm_mg_mmio_start[], vmm_mg_mmio_end[];
extern const uint8_t vmm_mg_pio_start[], vmm_mg_pio_end[];

static void put64(uint8_t *mem, uint64_t gpa, uint64_t v)
{
	memcpy(mem + gpa, &v, sizeof(v));
}

/* A 16-byte 64-bit TSS descriptor (busy type: KVM and VMX want TR busy). */
static void put_tss_desc(uint8_t *mem, uint64_t gpa, uint64_t base, uint32_t limit)
{
	uint64_t lo = (limit & 0xffffull) | ((base & 0xffffffull) << 16) |
		      (0xbull << 40) | (1ull << 47) | ((uint64_t)(limit >> 16 & 0xf) << 48) |
		      ((base >> 24 & 0xffull) << 56);
	put64(mem, gpa, lo);
	put64(mem, gpa + 8, base >> 32);
}

int vmm_mg_layout(uint8_t *mem, uint64_t mem_size, enum vmm_mg_answer_mode mode)
{
	if (mem_size < VMM_MG_MEM_MIN || mem_size > VMM_MG_MEM_MAX || mem_size % TWO_MIB)
		return vmm_err(-EINVAL, "micro-guest: memory size %llu not a multiple of 2 MiB in [4 MiB, 1 GiB]",
			       (unsigned long long)mem_size);
	const uint8_t *code = mode == VMM_MG_ANSWER_PIO ? vmm_mg_pio_start : vmm_mg_mmio_start;
	const uint8_t *end = mode == VMM_MG_ANSWER_PIO ? vmm_mg_pio_end : vmm_mg_mmio_end;
	if ((size_t)(end - code) > VMM_MG_PAGE)
		return vmm_err(-EINVAL, "micro-guest: code larger than a page");

	put64(mem, VMM_MG_PML4, VMM_MG_PDPT | PTE_TABLE);
	put64(mem, VMM_MG_PDPT + 0 * 8, VMM_MG_PD_LOW | PTE_TABLE);
	put64(mem, VMM_MG_PDPT + 3 * 8, VMM_MG_PD_MMIO | PTE_TABLE);
	put64(mem, VMM_MG_PD_LOW, VMM_MG_PT0 | PTE_TABLE);
	for (uint64_t a = TWO_MIB; a < mem_size; a += TWO_MIB)
		put64(mem, VMM_MG_PD_LOW + a / TWO_MIB * 8, a | PTE_TABLE | PTE_D | PTE_PS);
	put64(mem, VMM_MG_PD_MMIO, VMM_MG_ANSWER_GPA | PTE_TABLE | PTE_D | PTE_PS);
	/* First 2 MiB: only the pages the guest uses.  GDT/TSS supervisor-only,
	 * code read-only; the page tables themselves need no mapping. */
	put64(mem, VMM_MG_PT0 + VMM_MG_GDT / VMM_MG_PAGE * 8, VMM_MG_GDT | PTE_P | PTE_RW | PTE_A | PTE_D);
	put64(mem, VMM_MG_PT0 + VMM_MG_MBOX / VMM_MG_PAGE * 8, VMM_MG_MBOX | PTE_TABLE | PTE_D);
	put64(mem, VMM_MG_PT0 + VMM_MG_CODE / VMM_MG_PAGE * 8, VMM_MG_CODE | PTE_P | PTE_US | PTE_A);
	put64(mem, VMM_MG_PT0 + VMM_MG_STACK / VMM_MG_PAGE * 8, VMM_MG_STACK | PTE_TABLE | PTE_D);

	/* GDT: null, kernel code/data (unused), user code64/data, TSS.  The
	 * accessed bit is preset in every descriptor (no descriptor writes). */
	put64(mem, VMM_MG_GDT + 0x00, 0);
	put64(mem, VMM_MG_GDT + 0x08, 0x00af9b000000ffffull);
	put64(mem, VMM_MG_GDT + 0x10, 0x00cf93000000ffffull);
	put64(mem, VMM_MG_GDT + 0x18, 0x00affb000000ffffull);
	put64(mem, VMM_MG_GDT + 0x20, 0x00cff3000000ffffull);
	put_tss_desc(mem, VMM_MG_GDT + VMM_MG_SEL_TSS, VMM_MG_TSS, 0x67);
	/* TSS: no I/O bitmap (its base points past the limit). */
	uint16_t iomap = 0x68;
	memcpy(mem + VMM_MG_TSS + 102, &iomap, sizeof(iomap));

	memset(mem + VMM_MG_MBOX, 0, sizeof(struct vmm_mg_mbox));
	memcpy(mem + VMM_MG_CODE, code, (size_t)(end - code));
	return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, bool code)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = dpl;
	s->s = 1;
	s->l = code;
	s->db = !code;
	s->g = 1;
}

void vmm_mg_cpu_state(enum vmm_mg_answer_mode mode, struct kvm_regs *regs,
		      struct kvm_sregs *sregs)
{
	seg(&sregs->cs, VMM_MG_SEL_UCODE, 0xb, 3, true);
	seg(&sregs->ss, VMM_MG_SEL_UDATA, 0x3, 3, false);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss;
	memset(&sregs->tr, 0, sizeof(sregs->tr));
	sregs->tr.selector = VMM_MG_SEL_TSS;
	sregs->tr.base = VMM_MG_TSS;
	sregs->tr.limit = 0x67;
	sregs->tr.type = 0xb;
	sregs->tr.present = 1;
	memset(&sregs->ldt, 0, sizeof(sregs->ldt));
	sregs->ldt.type = 0x2;
	sregs->ldt.unusable = 1;
	sregs->gdt.base = VMM_MG_GDT;
	sregs->gdt.limit = VMM_MG_SEL_TSS + 16 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;            /* any exception: triple fault */
	sregs->cr0 = 0x80050033ull;      /* PG | AM | WP | NE | ET | MP | PE */
	sregs->cr3 = VMM_MG_PML4;
	sregs->cr4 = 0x20;               /* PAE */
	sregs->efer = 0x500;             /* LMA | LME */
	sregs->cr8 = 0;
	memset(sregs->interrupt_bitmap, 0, sizeof(sregs->interrupt_bitmap));

	memset(regs, 0, sizeof(*regs));
	regs->rip = VMM_MG_CODE;
	regs->rsp = VMM_MG_STACK + VMM_MG_PAGE;
	/* IF = 0: no interrupts.  IOPL = 3 lets `out` execute at CPL3. */
	regs->rflags = 0x2 | (mode == VMM_MG_ANSWER_PIO ? 0x3000 : 0);
}

int vmm_mg_request(uint8_t *mem, uint64_t mem_size, enum vmm_mg_op op, uint64_t arg,
		   uint64_t addr, uint64_t count)
{
	if ((unsigned)op > VMM_MG_OP_READ_PAGES)
		return vmm_err(-EINVAL, "micro-guest: unknown request op %d", (int)op);
	if (op == VMM_MG_OP_WRITE || op == VMM_MG_OP_READ)
		count = 1;
	if (op != VMM_MG_OP_HELLO && op != VMM_MG_OP_ECHO) {
		if (addr < VMM_MG_DATA_BASE || addr % 8 || addr >= mem_size ||
		    count > (mem_size - addr + VMM_MG_PAGE - 1) / VMM_MG_PAGE ||
		    (count && addr + (count - 1) * VMM_MG_PAGE + 8 > mem_size))
			return vmm_err(-EINVAL, "micro-guest: request op %d at 0x%llx x %llu pages outside the data area",
				       (int)op, (unsigned long long)addr, (unsigned long long)count);
	}
	struct vmm_mg_mbox m = {.op = op, .arg = arg, .addr = addr, .count = count};
	memcpy(mem + VMM_MG_MBOX, &m, sizeof(m));
	return 0;
}

const char *vmm_mg_exit_name(uint32_t r)
{
	switch (r) {
	case KVM_EXIT_IO: return "KVM_EXIT_IO";
	case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
	case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN (triple fault)";
	case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
	case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
	case KVM_EXIT_INTR: return "KVM_EXIT_INTR";
	case KVM_EXIT_SYSTEM_EVENT: return "KVM_EXIT_SYSTEM_EVENT";
	default: return "other exit";
	}
}

int vmm_mg_answer(const struct kvm_run *run, enum vmm_mg_answer_mode mode, uint64_t *answer)
{
	if (mode == VMM_MG_ANSWER_MMIO && run->exit_reason == KVM_EXIT_MMIO) {
		if (!run->mmio.is_write || run->mmio.phys_addr != VMM_MG_ANSWER_GPA || run->mmio.len != 8)
			return vmm_err(-EIO, "micro-guest: unexpected MMIO %s of %u bytes at 0x%llx",
				       run->mmio.is_write ? "write" : "read", run->mmio.len,
				       (unsigned long long)run->mmio.phys_addr);
		memcpy(answer, run->mmio.data, 8);
		return 0;
	}
	if (mode == VMM_MG_ANSWER_PIO && run->exit_reason == KVM_EXIT_IO) {
		if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != VMM_MG_ANSWER_PORT ||
		    run->io.size != 4 || run->io.count != 1)
			return vmm_err(-EIO, "micro-guest: unexpected port %s 0x%x size %u",
				       run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
				       run->io.port, run->io.size);
		uint32_t v;
		memcpy(&v, (const uint8_t *)run + run->io.data_offset, sizeof(v));
		*answer = v;
		return 0;
	}
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		return vmm_err(-EIO, "micro-guest: KVM_EXIT_INTERNAL_ERROR suberror %u",
			       run->internal.suberror);
	if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		return vmm_err(-EIO, "micro-guest: KVM_EXIT_FAIL_ENTRY reason 0x%llx",
			       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	return vmm_err(-EIO, "micro-guest: %s (%u) instead of an answer",
		       vmm_mg_exit_name(run->exit_reason), run->exit_reason);
}
