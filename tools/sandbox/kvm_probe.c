/* kvm-probe — prints `hardware` (exit 0) when /dev/kvm runs a CPL0 guest
 * loop at native speed, else `sandbox: <reason>` (exit 1); exit 2 on an
 * internal error.  tools/kvm-run uses it to pick hardware or the sandbox.
 *
 *   kvm-probe [--verbose] [--device PATH]
 *   kvm-probe --tsc-khz     prints the host TSC frequency in kHz (the KVM
 *                           sandbox passes it to its kernel: under TCG the
 *                           guest TSC is the host's, and a given frequency
 *                           spares the timing-sensitive calibration)
 */
#include "tools/sandbox/probe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

static uint64_t mono_raw_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* TSC frequency: TSC ticks over ~20 ms of CLOCK_MONOTONIC_RAW, median of 5. */
static int print_tsc_khz(void)
{
	uint64_t khz[5];
	for (int i = 0; i < 5; i++) {
		uint64_t n0 = mono_raw_ns(), t0 = __rdtsc(), n1, t1;
		do {
			n1 = mono_raw_ns();
		} while (n1 - n0 < 20 * 1000 * 1000);
		t1 = __rdtsc();
		if (t1 <= t0) {
			fprintf(stderr, "kvm-probe: TSC did not advance\n");
			return 2;
		}
		khz[i] = (t1 - t0) * 1000000ull / (n1 - n0);
	}
	qsort(khz, 5, sizeof(khz[0]), cmp_u64);
	printf("%llu\n", (unsigned long long)khz[2]);
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: kvm-probe [--verbose] [--device PATH] | --tsc-khz\n"
	      "  prints `hardware` (exit 0) or `sandbox: <reason>` (exit 1);\n"
	      "  exit 2 on an internal error.  --verbose adds details on stderr.\n",
	      f);
}

int main(int argc, char **argv)
{
	bool verbose = false;
	const char *dev = "/dev/kvm";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
			verbose = true;
		} else if (!strcmp(argv[i], "--tsc-khz")) {
			return print_tsc_khz();
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			dev = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kvm-probe: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}

	struct kvm_probe_result res;
	kvm_probe_run(dev, "/sys/module", &res);

	if (verbose) {
		fprintf(stderr, "kvm-probe: device %s\n", dev);
		fprintf(stderr, "kvm-probe: kvm_pvm module: %s\n",
			res.pvm_module ? "loaded" : "not loaded");
		if (res.api_version >= 0)
			fprintf(stderr, "kvm-probe: KVM_GET_API_VERSION: %d\n", res.api_version);
		if (res.setup_ns)
			fprintf(stderr, "kvm-probe: create VM .. first exit: %.3f ms\n",
				(double)res.setup_ns / 1e6);
		if (res.loop_ran)
			fprintf(stderr,
				"kvm-probe: CPL0 loop: %u iterations in %.3f ms "
				"(%.2f ns/iteration; slow above %.0f ms)\n",
				res.iterations, (double)res.loop_ns / 1e6,
				(double)res.loop_ns / res.iterations,
				(double)KVM_PROBE_SLOW_NS / 1e6);
		else if (res.loop_timed_out)
			fprintf(stderr, "kvm-probe: CPL0 loop: watchdog fired after %u ms\n",
				KVM_PROBE_WATCHDOG_MS);
		if (res.what[0])
			fprintf(stderr, "kvm-probe: failure: %s\n", res.what);
	}

	char line[512];
	kvm_probe_format(&res, line, sizeof(line));
	if (res.verdict == KVM_PROBE_INTERNAL) {
		fprintf(stderr, "kvm-probe: %s\n", line);
	} else {
		puts(line);
		fflush(stdout);
	}
	return kvm_probe_exit_status(&res);
}
