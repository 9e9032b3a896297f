/* mptable.h — the Intel MultiProcessor table: tells a guest without ACPI
 * where its local APICs and IOAPIC are and how ISA interrupts are wired.
 * Without it a 6.1 kernel hangs in calibrate_delay (DESIGN.md §5). */
#ifndef VMM_MPTABLE_H
#define VMM_MPTABLE_H

#include "vmm/guest_mem.h"

/* Write the floating pointer and configuration table at VMM_MPTABLE_ADDR for
 * `ncpus` CPUs (APIC ids 0..ncpus-1; the IOAPIC takes id ncpus). */
int vmm_mptable_write(struct vmm_mem *mem, int ncpus) __attribute__((warn_unused_result));

#endif
