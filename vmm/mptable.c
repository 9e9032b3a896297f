/* mptable.c — MP specification 1.4 tables. */
#include "vmm/mptable.h"
#include "vmm/err.h"
#include "vmm/layout.h"

#include <errno.h>
#include <string.h>

struct mpf_intel {          /* floating pointer, 16 bytes */
	char signature[4];      /* "_MP_" */
	uint32_t physptr;
	uint8_t length;         /* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature1, feature2, feature3, feature4, feature5;
} __attribute__((packed));

struct mpc_table {          /* configuration table header, 44 bytes */
	char signature[4];      /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;
	uint32_t lapic;
	uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t cpufeature, featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type, busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type, apicid, apicver, flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {         /* type 3 (I/O) and 4 (local) interrupt entries */
	uint8_t type, irqtype;
	uint16_t irqflag;
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
#define CPU_ENABLED      1
#define CPU_BOOTPROCESSOR 2
#define MPC_APIC_USABLE  1
#define ISA_IRQS         16

static uint8_t mp_checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;
	while (n--)
		sum += *p++;
	return (uint8_t)-sum;
}

int vmm_mptable_write(struct vmm_mem *mem, int ncpus)
{
	const size_t size = sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
			    (size_t)ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
			    sizeof(struct mpc_ioapic) + (ISA_IRQS + 2) * sizeof(struct mpc_intsrc);
	if (ncpus < 1 || ncpus > 32 || VMM_MPTABLE_ADDR + size > VMM_EBDA_END)
		return vmm_err(-EINVAL, "mptable: unsupported CPU count %d", ncpus);
	uint8_t *base = vmm_mem_ptr(mem, VMM_MPTABLE_ADDR, size);
	if (!base)
		return vmm_err(-E2BIG, "mptable: guest memory too small");
	memset(base, 0, size);

	struct mpf_intel *mpf = (struct mpf_intel *)base;
	struct mpc_table *mpc = (struct mpc_table *)(mpf + 1);
	uint8_t *p = (uint8_t *)(mpc + 1);
	const uint8_t ioapic_id = (uint8_t)ncpus;
	uint16_t count = 0;

	for (int i = 0; i < ncpus; i++, count++) {
		struct mpc_cpu *c = (struct mpc_cpu *)p;
		c->type = MP_PROCESSOR;
		c->apicid = (uint8_t)i;
		c->apicver = 0x14;
		c->cpuflag = CPU_ENABLED | (i == 0 ? CPU_BOOTPROCESSOR : 0);
		c->cpufeature = 0x600;          /* family 6 */
		c->featureflag = 0x201;         /* FPU, APIC */
		p += sizeof(*c);
	}
	struct mpc_bus *bus = (struct mpc_bus *)p;
	bus->type = MP_BUS;
	bus->busid = 0;
	memcpy(bus->bustype, "ISA   ", 6);
	p += sizeof(*bus);
	count++;

	struct mpc_ioapic *io = (struct mpc_ioapic *)p;
	io->type = MP_IOAPIC;
	io->apicid = ioapic_id;
	io->apicver = 0x11;
	io->flags = MPC_APIC_USABLE;
	io->apicaddr = (uint32_t)VMM_IOAPIC_ADDR;
	p += sizeof(*io);
	count++;

	/* ISA IRQ n -> IOAPIC pin n, as KVM's default routing has it. */
	for (int irq = 0; irq < ISA_IRQS; irq++, count++) {
		struct mpc_intsrc *s = (struct mpc_intsrc *)p;
		*s = (struct mpc_intsrc){.type = MP_INTSRC, .irqtype = MP_INT, .srcbus = 0,
					 .srcbusirq = (uint8_t)irq, .dstapic = ioapic_id,
					 .dstirq = (uint8_t)irq};
		p += sizeof(*s);
	}
	/* LINT0 = ExtINT (the PIC), LINT1 = NMI, on every local APIC. */
	struct mpc_intsrc *l = (struct mpc_intsrc *)p;
	l[0] = (struct mpc_intsrc){.type = MP_LINTSRC, .irqtype = MP_EXTINT, .dstapic = 0xff, .dstirq = 0};
	l[1] = (struct mpc_intsrc){.type = MP_LINTSRC, .irqtype = MP_NMI, .dstapic = 0xff, .dstirq = 1};
	p += 2 * sizeof(*l);
	count += 2;

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)(p - (uint8_t *)mpc);
	mpc->spec = 4;
	memcpy(mpc->oem, "UNIFORK ", 8);
	memcpy(mpc->productid, "VMM         ", 12);
	mpc->oemcount = count;
	mpc->lapic = (uint32_t)VMM_LAPIC_ADDR;
	mpc->checksum = mp_checksum((uint8_t *)mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(VMM_MPTABLE_ADDR + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = mp_checksum((uint8_t *)mpf, sizeof(*mpf));
	return 0;
}
