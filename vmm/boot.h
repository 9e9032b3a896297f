/* boot.h — the Linux x86-64 boot protocol: loads a kernel (uncompressed ELF
 * vmlinux or bzImage) and an initrd into guest memory, writes the zero page
 * (setup header, e820 map), command line, GDT and identity page tables, and
 * says where the vCPU enters.  Pure memory layout: no ioctls here; cpu.c
 * turns a vmm_boot_info into register state.
 */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

struct vmm_boot_info {
	uint64_t entry;          /* 64-bit entry point (guest-physical) */
	uint64_t zero_page;      /* rsi at entry */
	uint64_t stack;          /* rsp at entry */
	uint64_t cr3;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint64_t kernel_end;     /* first byte after the loaded kernel image */
	uint64_t initrd_addr, initrd_size;
	int is_bzimage;
};

/* Load kernel bytes `k` (`klen`), optional initrd bytes, and `cmdline`.
 * Fails with -ENOEXEC (not a kernel we can boot), -E2BIG (something does
 * not fit in guest memory, or the command line is too long) or -EINVAL,
 * each with vmm_err() context. */
int vmm_boot_load(struct vmm_mem *mem, const uint8_t *k, size_t klen,
		  const uint8_t *initrd, size_t initrd_len, const char *cmdline,
		  struct vmm_boot_info *out) __attribute__((warn_unused_result));

#endif
