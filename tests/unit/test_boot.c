/* test_boot.c — the boot protocol loader, MP table and 8250 UART. */
#include "tests/unit/ut.h"
#include "vmm/boot.h"
#include "vmm/layout.h"
#include "vmm/mptable.h"
#include "vmm/serial.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MEM (64ull << 20)
#define KPADDR 0x1000000ull

/* A minimal vmlinux-shaped ELF: one PT_LOAD of `payload` bytes at 16 MiB
 * (memsz = payload + bss), entry at its start. */
static size_t make_elf(uint8_t *buf, size_t payload, uint64_t bss, uint64_t paddr, uint64_t entry)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));
	size_t off = sizeof(*eh) + sizeof(*ph);
	memset(buf, 0, off);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	ph->p_type = PT_LOAD;
	ph->p_offset = off;
	ph->p_paddr = paddr;
	ph->p_filesz = payload;
	ph->p_memsz = payload + bss;
	for (size_t i = 0; i < payload; i++)
		buf[off + i] = (uint8_t)(i * 7 + 1);
	return off + payload;
}

static uint8_t kbuf[1 << 16];

static struct vmm_mem new_mem(uint64_t size)
{
	struct vmm_mem m;
	if (vmm_mem_init(&m, size))
		UT_FAIL("vmm_mem_init");
	return m;
}

UT_TEST(boot_elf_loads_segments_and_zero_page)
{
	struct vmm_mem m = new_mem(MEM);
	size_t n = make_elf(kbuf, 4096, 8192, KPADDR, KPADDR + 16);
	uint8_t initrd[10000];
	memset(initrd, 0xab, sizeof(initrd));
	memset(m.host + KPADDR + 4096, 0x55, 8192);    /* bss must be zeroed */
	struct vmm_boot_info bi;
	UT_EQ(vmm_boot_load(&m, kbuf, n, initrd, sizeof(initrd), "console=ttyS0 quiet", &bi), 0);
	UT_EQ(bi.entry, KPADDR + 16);
	UT_EQ(bi.zero_page, VMM_ZERO_PAGE);
	UT_ASSERT(memcmp(m.host + KPADDR, kbuf + n - 4096, 4096) == 0);
	for (int i = 0; i < 8192; i++)
		UT_EQ(m.host[KPADDR + 4096 + i], 0);

	struct boot_params *zp = (struct boot_params *)(m.host + VMM_ZERO_PAGE);
	UT_EQ(zp->hdr.boot_flag, 0xaa55);
	UT_EQ(zp->hdr.type_of_loader, 0xff);
	UT_EQ(zp->hdr.cmd_line_ptr, VMM_CMDLINE_ADDR);
	UT_ASSERT(strcmp((char *)m.host + VMM_CMDLINE_ADDR, "console=ttyS0 quiet") == 0);
	UT_EQ(zp->hdr.ramdisk_size, sizeof(initrd));
	UT_EQ(zp->hdr.ramdisk_image % 4096, 0);
	UT_ASSERT(zp->hdr.ramdisk_image + sizeof(initrd) <= MEM);
	UT_ASSERT(zp->hdr.ramdisk_image >= KPADDR + 4096 + 8192);
	UT_ASSERT(memcmp(m.host + zp->hdr.ramdisk_image, initrd, sizeof(initrd)) == 0);

	UT_EQ(zp->e820_entries, 3);
	UT_EQ(zp->e820_table[0].addr, 0);
	UT_EQ(zp->e820_table[0].size, VMM_MPTABLE_ADDR);
	UT_EQ(zp->e820_table[1].type, 2);
	UT_EQ(zp->e820_table[2].addr + zp->e820_table[2].size, MEM);

	uint64_t *pml4 = (uint64_t *)(m.host + VMM_PML4_ADDR);
	uint64_t *pd = (uint64_t *)(m.host + VMM_PD_ADDR);
	UT_EQ(pml4[0] & ~0xfffull, VMM_PDPT_ADDR);
	UT_EQ(pd[8], (8ull << 21) | 0x83);
	vmm_mem_release(&m);
}

UT_TEST(boot_refuses_bad_kernels)
{
	struct vmm_mem m = new_mem(MEM);
	struct vmm_boot_info bi;
	size_t n;

	memset(kbuf, 0x90, sizeof(kbuf));
	UT_EQ(vmm_boot_load(&m, kbuf, 0x200, NULL, 0, "", &bi), -ENOEXEC);         /* tiny */
	UT_EQ(vmm_boot_load(&m, kbuf, sizeof(kbuf), NULL, 0, "", &bi), -ENOEXEC);  /* garbage */

	n = make_elf(kbuf, 4096, 0, KPADDR, KPADDR);
	UT_EQ(vmm_boot_load(&m, kbuf, n - 100, NULL, 0, "", &bi), -ENOEXEC);       /* truncated */

	n = make_elf(kbuf, 4096, 0, KPADDR, 0x10);
	UT_EQ(vmm_boot_load(&m, kbuf, n, NULL, 0, "", &bi), -ENOEXEC);             /* entry outside */

	n = make_elf(kbuf, 4096, 0, 0x7000, 0x7000);
	UT_EQ(vmm_boot_load(&m, kbuf, n, NULL, 0, "", &bi), -ENOEXEC);             /* over boot data */

	n = make_elf(kbuf, 4096, MEM, KPADDR, KPADDR);
	UT_EQ(vmm_boot_load(&m, kbuf, n, NULL, 0, "", &bi), -E2BIG);               /* bss past RAM */

	n = make_elf(kbuf, 4096, 0, KPADDR, KPADDR);
	((Elf64_Ehdr *)kbuf)->e_phoff = 0xffffffffffffff00ull;
	UT_EQ(vmm_boot_load(&m, kbuf, n, NULL, 0, "", &bi), -ENOEXEC);             /* phdr overflow */

	n = make_elf(kbuf, 4096, 0, KPADDR, KPADDR);
	((Elf64_Ehdr *)kbuf)->e_machine = EM_AARCH64;
	UT_EQ(vmm_boot_load(&m, kbuf, n, NULL, 0, "", &bi), -ENOEXEC);
	vmm_mem_release(&m);
}

UT_TEST(boot_refuses_initrd_and_cmdline_that_do_not_fit)
{
	struct vmm_mem m = new_mem(32ull << 20);
	struct vmm_boot_info bi;
	size_t n = make_elf(kbuf, 4096, 0, KPADDR, KPADDR);
	size_t big = 20ull << 20;               /* 16 MiB kernel base + 20 MiB > 32 MiB */
	uint8_t *rd = calloc(1, big);
	UT_ASSERT(rd);
	UT_EQ(vmm_boot_load(&m, kbuf, n, rd, big, "", &bi), -E2BIG);
	UT_EQ(vmm_boot_load(&m, kbuf, n, rd, 8ull << 20, "", &bi), 0);
	free(rd);

	char *cl = malloc(VMM_CMDLINE_MAX + 1);
	memset(cl, 'a', VMM_CMDLINE_MAX);
	cl[VMM_CMDLINE_MAX] = 0;
	UT_EQ(vmm_boot_load(&m, kbuf, n, NULL, 0, cl, &bi), -E2BIG);
	free(cl);
	vmm_mem_release(&m);
}

UT_TEST(boot_bzimage_header)
{
	struct vmm_mem m = new_mem(MEM);
	struct vmm_boot_info bi;
	memset(kbuf, 0, sizeof(kbuf));
	kbuf[0x1f1] = 4;                         /* setup_sects */
	kbuf[0x201] = 0x66;                      /* header end = 0x268 */
	struct setup_header *h = (struct setup_header *)(kbuf + 0x1f1);
	h->header = 0x53726448;
	h->version = 0x020f;
	h->xloadflags = 1;
	h->cmdline_size = 255;
	h->initrd_addr_max = 0x7fffffff;
	h->init_size = 1 << 20;
	UT_EQ(vmm_boot_load(&m, kbuf, sizeof(kbuf), NULL, 0, "quiet", &bi), 0);
	UT_EQ(bi.entry, 0x100200);
	UT_ASSERT(bi.is_bzimage);
	UT_ASSERT(memcmp(m.host + 0x100000, kbuf + 5 * 512, sizeof(kbuf) - 5 * 512) == 0);
	struct boot_params *zp = (struct boot_params *)(m.host + VMM_ZERO_PAGE);
	UT_EQ(zp->hdr.version, 0x020f);
	UT_EQ(zp->hdr.cmdline_size, 255);

	char cl[300];
	memset(cl, 'x', sizeof(cl) - 1);
	cl[sizeof(cl) - 1] = 0;                  /* over the kernel's 255 */
	UT_EQ(vmm_boot_load(&m, kbuf, sizeof(kbuf), NULL, 0, cl, &bi), -E2BIG);

	h->version = 0x020a;                     /* no 64-bit entry */
	UT_EQ(vmm_boot_load(&m, kbuf, sizeof(kbuf), NULL, 0, "", &bi), -ENOEXEC);
	vmm_mem_release(&m);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

UT_TEST(mptable_checksums_and_entries)
{
	struct vmm_mem m = new_mem(MEM);
	UT_EQ(vmm_mptable_write(&m, 1), 0);
	uint8_t *mpf = m.host + VMM_MPTABLE_ADDR;
	UT_ASSERT(memcmp(mpf, "_MP_", 4) == 0);
	UT_EQ(sum(mpf, 16), 0);
	uint32_t phys;
	memcpy(&phys, mpf + 4, 4);
	uint8_t *mpc = m.host + phys;
	UT_ASSERT(memcmp(mpc, "PCMP", 4) == 0);
	uint16_t len, count;
	memcpy(&len, mpc + 4, 2);
	memcpy(&count, mpc + 34, 2);
	UT_EQ(sum(mpc, len), 0);
	UT_EQ(count, 1 + 1 + 1 + 16 + 2);       /* cpu, bus, ioapic, ISA irqs, LINT0/1 */
	UT_ASSERT(phys + len <= VMM_EBDA_END);
	UT_EQ(vmm_mptable_write(&m, 0), -EINVAL);
	vmm_mem_release(&m);
}

static int irq_level = -1, irq_changes;
static void rec_irq(void *o, int level)
{
	(void)o;
	irq_level = level;
	irq_changes++;
}

UT_TEST(serial_transmits_and_raises_thre)
{
	int p[2];
	UT_EQ(pipe(p), 0);
	struct vmm_serial s;
	vmm_serial_init(&s, p[1], rec_irq, NULL);
	uint8_t v;

	/* Autoconfig probes: scratch, IER, loopback MSR. */
	v = 0xa5; vmm_serial_io(&s, 7, &v, true);
	v = 0; vmm_serial_io(&s, 7, &v, false);
	UT_EQ(v, 0xa5);
	v = 0x1a; vmm_serial_io(&s, 4, &v, true);
	vmm_serial_io(&s, 6, &v, false);
	UT_EQ(v & 0xf0, 0x90);
	v = 0x08; vmm_serial_io(&s, 4, &v, true);

	const char *msg = "hello\n";
	for (const char *c = msg; *c; c++) {
		v = (uint8_t)*c;
		vmm_serial_io(&s, 0, &v, true);
	}
	char out[16] = {0};
	UT_EQ(read(p[0], out, sizeof(out)), 6);
	UT_ASSERT(strcmp(out, "hello\n") == 0);
	UT_EQ(s.out_bytes, 6);

	/* Enabling THRI with an empty transmitter raises the line; reading
	 * IIR acknowledges and lowers it. */
	v = 0x02; vmm_serial_io(&s, 1, &v, true);
	UT_EQ(irq_level, 1);
	vmm_serial_io(&s, 2, &v, false);
	UT_EQ(v & 0x0f, 0x02);
	UT_EQ(irq_level, 0);
	vmm_serial_io(&s, 2, &v, false);
	UT_EQ(v & 0x0f, 0x01);
	v = 'x'; vmm_serial_io(&s, 0, &v, true);
	UT_EQ(irq_level, 1);

	/* Divisor latch. */
	v = 0x80; vmm_serial_io(&s, 3, &v, true);
	v = 3; vmm_serial_io(&s, 0, &v, true);
	v = 0; vmm_serial_io(&s, 0, &v, false);
	UT_EQ(v, 3);
	UT_EQ(s.out_bytes, 7);                  /* the DLL write sent nothing */
	close(p[0]);
	close(p[1]);
}

UT_TEST(serial_output_limit_drops_excess)
{
	int p[2];
	UT_EQ(pipe(p), 0);
	struct vmm_serial s;
	vmm_serial_init(&s, p[1], NULL, NULL);
	s.out_limit = 4;
	for (int i = 0; i < 100; i++) {
		uint8_t v = 'a';
		vmm_serial_io(&s, 0, &v, true);
	}
	vmm_serial_flush(&s);
	close(p[1]);
	char out[200];
	UT_EQ(read(p[0], out, sizeof(out)), 4);
	UT_EQ(s.out_bytes, 100);
	close(p[0]);
}
