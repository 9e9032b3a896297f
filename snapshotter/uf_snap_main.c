/* uf_snap_main.c — `uf-snap`, the snapshot inspector.
 *
 *   uf-snap inspect [--check-host] [--kvm PATH] DIR
 *
 * Verifies DIR like a restore would (format, checksum, memory file; with
 * --check-host also the CPU against this host's KVM) and prints what is in
 * it.  Exit status: 0 valid, 1 refused (one line on stderr says why), 2 usage.
 */
#include "snapshotter/snapshot.h"
#include "vmm/err.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: uf-snap inspect [--check-host] [--kvm PATH] DIR\n"
		   "  --check-host  also check the snapshot's CPU against this host's KVM\n"
		   "exit status: 0 valid, 1 refused, 2 usage\n");
}

static void print_hash(const char *what, const uint8_t *h)
{
	char hex[2 * SNAP_SHA256_LEN + 1];
	snap_hex(h, SNAP_SHA256_LEN, hex);
	printf("  %-12s %s\n", what, snap_hash_known(h) ? hex : "(not recorded)");
}

static void print_image(const char *dir, const struct snap_image *img)
{
	const struct snap_meta *m = img->meta;
	const struct snap_vm_state *vm = &m->vm;
	const struct snap_vcpu_state *v = &vm->vcpu;
	uint64_t pages = vm->mem_size / SNAP_PAGE_SIZE;
	char when[64] = "?";
	time_t secs = (time_t)(m->created_unix_ns / 1000000000ull);
	struct tm tm;
	if (gmtime_r(&secs, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);

	printf("snapshot %s\n", dir);
	printf("  %-12s %u\n", "format", m->format_version);
	printf("  %-12s %s, host %s, CPU %s\n", "created", when,
	       m->host_release[0] ? m->host_release : "?", m->cpu_vendor);
	printf("  %-12s %" PRIu64 " MiB: %" PRIu64 " pages, %" PRIu64 " non-zero (%.1f%%); "
	       "memory.bin occupies %.1f MiB\n", "memory", vm->mem_size >> 20, pages,
	       m->nonzero_pages, pages ? 100.0 * (double)m->nonzero_pages / (double)pages : 0.0,
	       (double)img->mem_file_alloc / (1 << 20));
	print_hash("kernel", m->origin.kernel);
	print_hash("initramfs", m->origin.initrd);
	print_hash("agent", m->origin.agent);
	printf("  %-12s rip 0x%llx rsp 0x%llx rflags 0x%llx cr3 0x%llx cr0 0x%llx efer 0x%llx\n",
	       "vcpu 0", (unsigned long long)v->regs.rip, (unsigned long long)v->regs.rsp,
	       (unsigned long long)v->regs.rflags, (unsigned long long)v->sregs.cr3,
	       (unsigned long long)v->sregs.cr0, (unsigned long long)v->sregs.efer);
	printf("  %-12s mp_state %u, tsc %u kHz, %u CPUID entries, %u MSRs, %s %u bytes%s\n", "",
	       v->mp_state.mp_state, v->tsc_khz, v->ncpuid, v->nmsrs,
	       v->xsave_len ? "xsave" : "fpu", v->xsave_len ? v->xsave_len : (unsigned)sizeof(v->fpu),
	       v->has_xcrs ? ", xcrs" : "");
	printf("  %-12s kvm-clock %.3f s, %u host CPUID entries recorded\n", "vm",
	       (double)vm->clock.clock / 1e9, m->n_host_cpuid);
	if (vm->vsock_cid)
		printf("  %-12s vsock CID %" PRIu64 ", transport status 0x%x, driver features 0x%" PRIx64 "\n",
		       "devices", vm->vsock_cid, vm->vsock_mmio.status, vm->vsock_mmio.driver_features);
	else
		printf("  %-12s no vsock device\n", "devices");
	printf("  %-12s %s\n", "agent", vm->agent_ready ? "ready" : "not ready");
}

static int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{"check-host", no_argument, 0, 'c'}, {"kvm", required_argument, 0, 'k'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	struct snap_expect exp = {.skip_cpu_check = true};
	int c;
	while ((c = getopt_long(argc, argv, "ck:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': exp.skip_cpu_check = false; break;
		case 'k': exp.kvm_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	const char *dir = argv[optind];
	struct snap_image img;
	if (snap_open(dir, &exp, &img)) {
		fprintf(stderr, "uf-snap: %s: %s\n", dir, vmm_strerror());
		return 1;
	}
	print_image(dir, &img);
	snap_image_close(&img);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "inspect") == 0)
		return cmd_inspect(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
