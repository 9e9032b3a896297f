/* layout.h — where things live in guest-physical memory (DESIGN.md §5). */
#ifndef VMM_LAYOUT_H
#define VMM_LAYOUT_H

#define VMM_GDT_ADDR        0x500ull
#define VMM_ZERO_PAGE       0x7000ull
#define VMM_BOOT_STACK      0x8ff0ull
#define VMM_PML4_ADDR       0x9000ull
#define VMM_PDPT_ADDR       0xa000ull
#define VMM_PD_ADDR         0xb000ull
#define VMM_CMDLINE_ADDR    0x20000ull
#define VMM_CMDLINE_MAX     0x10000ull       /* up to the next 64 KiB */
#define VMM_MPTABLE_ADDR    0x9fc00ull       /* last KiB of base memory */
#define VMM_EBDA_END        0x100000ull      /* reserved: 0x9fc00 .. 1 MiB */
#define VMM_HIGH_MEM        0x100000ull
#define VMM_BZIMAGE_LOAD    0x100000ull      /* protected-mode kernel of a bzImage */

/* MMIO window for virtio-mmio devices: 4 KiB each, from here up. */
#define VMM_MMIO_BASE       0xd0000000ull
#define VMM_MMIO_SIZE       0x1000ull
#define VMM_VIRTIO_IRQ_BASE 5

#define VMM_IOAPIC_ADDR     0xfec00000ull
#define VMM_LAPIC_ADDR      0xfee00000ull

/* The 8250 at COM1 and its ISA interrupt. */
#define VMM_COM1_PORT       0x3f8
#define VMM_COM1_IRQ        4

#endif
