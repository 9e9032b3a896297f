/* boot.c — load a Linux kernel and initrd per the x86-64 boot protocol. */
#include "vmm/boot.h"
#include "vmm/err.h"
#include "vmm/layout.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <string.h>

#define KERNEL_MIN_PADDR   VMM_HIGH_MEM
#define SETUP_HDR_OFFSET   0x1f1
#define SETUP_MAGIC        0x53726448u      /* "HdrS" */

/* Flat 4 GiB descriptors: 64-bit code, data, and a TSS for TR. */
static const uint64_t vmm_gdt[] = {
	0,
	0,
	0x00af9b000000ffffull,  /* 0x10: __BOOT_CS */
	0x00cf93000000ffffull,  /* 0x18: __BOOT_DS */
	0x00808b000000ffffull,  /* 0x20: TSS */
};

static int load_elf(struct vmm_mem *mem, const uint8_t *k, size_t klen, struct vmm_boot_info *bi)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)k;

	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
		return vmm_err(-ENOEXEC, "kernel: ELF file is not a little-endian x86-64 executable");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phoff > klen || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > klen - eh->e_phoff)
		return vmm_err(-ENOEXEC, "kernel: corrupt ELF program header table");

	int loaded = 0, entry_ok = 0;
	uint64_t end = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, k + eh->e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > klen || ph.p_filesz > klen - ph.p_offset)
			return vmm_err(-ENOEXEC, "kernel: ELF segment %u lies outside the file (truncated?)", i);
		if (ph.p_paddr < KERNEL_MIN_PADDR)
			return vmm_err(-ENOEXEC, "kernel: ELF segment %u at 0x%llx overlaps boot data below 1 MiB",
				       i, (unsigned long long)ph.p_paddr);
		uint8_t *dst = vmm_mem_ptr(mem, ph.p_paddr, ph.p_memsz);
		if (!dst)
			return vmm_err(-E2BIG, "kernel: segment %u [0x%llx, +%llu MiB) does not fit in %llu MiB of guest memory",
				       i, (unsigned long long)ph.p_paddr,
				       (unsigned long long)(ph.p_memsz >> 20),
				       (unsigned long long)(mem->size >> 20));
		memcpy(dst, k + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (eh->e_entry >= ph.p_paddr && eh->e_entry - ph.p_paddr < ph.p_memsz)
			entry_ok = 1;
		if (ph.p_paddr + ph.p_memsz > end)
			end = ph.p_paddr + ph.p_memsz;
		loaded++;
	}
	if (!loaded)
		return vmm_err(-ENOEXEC, "kernel: ELF file has no loadable segment");
	if (!entry_ok)
		return vmm_err(-ENOEXEC, "kernel: ELF entry 0x%llx is not in a loaded segment (not a vmlinux?)",
			       (unsigned long long)eh->e_entry);
	bi->entry = eh->e_entry;
	bi->kernel_end = end;
	return 0;
}

static int load_bzimage(struct vmm_mem *mem, const uint8_t *k, size_t klen,
			struct boot_params *zp, struct vmm_boot_info *bi)
{
	struct setup_header hdr;
	memcpy(&hdr, k + SETUP_HDR_OFFSET, sizeof(hdr));
	if (hdr.header != SETUP_MAGIC)
		return vmm_err(-ENOEXEC, "kernel: neither an ELF vmlinux nor a bzImage (no HdrS magic)");
	if (hdr.version < 0x020c || !(hdr.xloadflags & XLF_KERNEL_64))
		return vmm_err(-ENOEXEC, "kernel: bzImage boot protocol %x.%02x has no 64-bit entry (need 2.12)",
			       hdr.version >> 8, hdr.version & 0xff);

	/* The header ends where the jump at 0x200 lands. */
	size_t hdr_end = 0x202 + k[0x201];
	if (hdr_end > SETUP_HDR_OFFSET + sizeof(hdr))
		hdr_end = SETUP_HDR_OFFSET + sizeof(hdr);
	memcpy(&zp->hdr, k + SETUP_HDR_OFFSET, hdr_end - SETUP_HDR_OFFSET);

	size_t setup_sects = hdr.setup_sects ? hdr.setup_sects : 4;
	size_t pm_off = (setup_sects + 1) * 512;
	if (pm_off >= klen)
		return vmm_err(-ENOEXEC, "kernel: bzImage truncated (setup of %zu bytes, file %zu)", pm_off, klen);
	size_t pm_len = klen - pm_off;
	uint64_t need = hdr.init_size > pm_len ? hdr.init_size : pm_len;
	uint8_t *dst = vmm_mem_ptr(mem, VMM_BZIMAGE_LOAD, need);
	if (!dst)
		return vmm_err(-E2BIG, "kernel: bzImage needs %llu MiB at 1 MiB, guest has %llu MiB",
			       (unsigned long long)(need >> 20), (unsigned long long)(mem->size >> 20));
	memcpy(dst, k + pm_off, pm_len);
	bi->entry = VMM_BZIMAGE_LOAD + 0x200;   /* startup_64 of the decompressor */
	bi->kernel_end = VMM_BZIMAGE_LOAD + need;
	bi->is_bzimage = 1;
	return 0;
}

static void write_e820(struct boot_params *zp, uint64_t mem_size)
{
	struct boot_e820_entry *e = zp->e820_table;
	e[0] = (struct boot_e820_entry){.addr = 0, .size = VMM_MPTABLE_ADDR, .type = 1};
	e[1] = (struct boot_e820_entry){.addr = VMM_MPTABLE_ADDR,
					.size = VMM_EBDA_END - VMM_MPTABLE_ADDR, .type = 2};
	e[2] = (struct boot_e820_entry){.addr = VMM_HIGH_MEM, .size = mem_size - VMM_HIGH_MEM, .type = 1};
	zp->e820_entries = 3;
}

/* Identity-map the first 1 GiB with 2 MiB pages: enough for the kernel, the
 * zero page and the command line; the kernel builds its own tables. */
static void write_page_tables(struct vmm_mem *mem)
{
	uint64_t *pml4 = vmm_mem_ptr(mem, VMM_PML4_ADDR, 4096);
	uint64_t *pdpt = vmm_mem_ptr(mem, VMM_PDPT_ADDR, 4096);
	uint64_t *pd = vmm_mem_ptr(mem, VMM_PD_ADDR, 4096);
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = VMM_PDPT_ADDR | 0x3;         /* present, writable */
	pdpt[0] = VMM_PD_ADDR | 0x3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x83;       /* present, writable, 2 MiB */
}

int vmm_boot_load(struct vmm_mem *mem, const uint8_t *k, size_t klen,
		  const uint8_t *initrd, size_t initrd_len, const char *cmdline,
		  struct vmm_boot_info *out)
{
	int ret;
	struct vmm_boot_info bi = {0};

	if (mem->size < VMM_MEM_MIN)
		return vmm_err(-E2BIG, "guest memory %llu MiB is below the minimum %llu MiB",
			       (unsigned long long)(mem->size >> 20), VMM_MEM_MIN >> 20);
	if (klen < 0x300)
		return vmm_err(-ENOEXEC, "kernel: file of %zu bytes is too small to be a kernel", klen);

	struct boot_params *zp = vmm_mem_ptr(mem, VMM_ZERO_PAGE, sizeof(*zp));
	memset(zp, 0, sizeof(*zp));

	if (memcmp(k, ELFMAG, SELFMAG) == 0)
		ret = load_elf(mem, k, klen, &bi);
	else
		ret = load_bzimage(mem, k, klen, zp, &bi);
	if (ret)
		return ret;

	/* Setup header: what the kernel reads when entered at 64-bit entry. */
	if (!bi.is_bzimage) {
		zp->hdr.header = SETUP_MAGIC;
		zp->hdr.version = 0x020f;
		zp->hdr.boot_flag = 0xaa55;
		zp->hdr.cmdline_size = VMM_CMDLINE_MAX - 1;
		zp->hdr.initrd_addr_max = 0xffffffffu;
		zp->hdr.kernel_alignment = 0x1000000;
	}
	zp->hdr.type_of_loader = 0xff;
	zp->hdr.loadflags |= LOADED_HIGH;

	/* Command line. */
	size_t clen = strlen(cmdline);
	uint64_t cmax = zp->hdr.cmdline_size ? zp->hdr.cmdline_size : 255;
	if (cmax > VMM_CMDLINE_MAX - 1)
		cmax = VMM_CMDLINE_MAX - 1;
	if (clen > cmax)
		return vmm_err(-E2BIG, "command line of %zu bytes exceeds the kernel's limit of %llu",
			       clen, (unsigned long long)cmax);
	char *cl = vmm_mem_ptr(mem, VMM_CMDLINE_ADDR, clen + 1);
	memcpy(cl, cmdline, clen + 1);
	zp->hdr.cmd_line_ptr = (uint32_t)VMM_CMDLINE_ADDR;

	/* Initrd: page-aligned, as high as the kernel allows, above the kernel. */
	if (initrd_len) {
		uint64_t top = mem->size;
		if ((uint64_t)zp->hdr.initrd_addr_max + 1 < top)
			top = (uint64_t)zp->hdr.initrd_addr_max + 1;
		uint64_t addr = initrd_len <= top ? ((top - initrd_len) & ~0xfffull) : 0;
		if (initrd_len > top || addr < bi.kernel_end)
			return vmm_err(-E2BIG, "initrd of %zu KiB does not fit in %llu MiB of guest memory above the kernel (which ends at %llu KiB)",
				       initrd_len >> 10, (unsigned long long)(mem->size >> 20),
				       (unsigned long long)(bi.kernel_end >> 10));
		memcpy(vmm_mem_ptr(mem, addr, initrd_len), initrd, initrd_len);
		zp->hdr.ramdisk_image = (uint32_t)addr;
		zp->hdr.ramdisk_size = (uint32_t)initrd_len;
		bi.initrd_addr = addr;
		bi.initrd_size = initrd_len;
	}

	write_e820(zp, mem->size);
	write_page_tables(mem);
	memcpy(vmm_mem_ptr(mem, VMM_GDT_ADDR, sizeof(vmm_gdt)), vmm_gdt, sizeof(vmm_gdt));

	bi.zero_page = VMM_ZERO_PAGE;
	bi.stack = VMM_BOOT_STACK;
	bi.cr3 = VMM_PML4_ADDR;
	bi.gdt_base = VMM_GDT_ADDR;
	bi.gdt_limit = sizeof(vmm_gdt) - 1;
	*out = bi;
	return 0;
}
