/* vsock_bench.c — uf-bench-vsock: round-trip latency and throughput of the
 * agent protocol between the host and the guest agent's echo handler.
 *
 *   uf-bench-vsock ours --kernel K --initrd I [--mem MiB] [--cmdline STR]
 *                       [--console FILE] [COMMON]
 *       boots our VM in-process (virtio-vsock, guest CID 3) and connects to
 *       the agent's vsock port through our user-space device;
 *   uf-bench-vsock fd --unix PATH [COMMON]
 *       connects to a unix stream socket behind which an agent answers (a
 *       QEMU guest's virtio-serial port: -chardev socket,path=PATH,server=on),
 *       retrying until the socket exists.
 *   COMMON: [-n N] [--warmup W] [--tput-size BYTES] [--tput-budget-mib MiB]
 *           [--timeout S]
 *
 * Both then run the same measurement: read the Hello; per size (64 B,
 * 4 KiB, 1 MiB) W warm-up echoes and N timed ones (agent_client_invoke,
 * each call's event distinct, the echoed body compared byte for byte after
 * the clock stopped); then a throughput run of --tput-size echoes (default
 * 1 MiB, at most 6 MiB) until --tput-budget-mib MiB went each way, timed per
 * call, reported as MiB/s counting both directions over the summed call
 * times.  Finally Shutdown(0): the guest powers off (ours: the VM exit is
 * checked; fd: the socket's EOF is awaited).
 *
 * Prints one JSON object on stdout (figures in µs, raw per-call samples in
 * call order included so that a caller can pool several runs); errors are one line on
 * stderr and exit status 1 (2 for usage).
 */
#include "proto/agent_client.h"
#include "vmm/err.h"
#include "vmm/vm_thread.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define OURS_CMDLINE "console=ttyS0 quiet panic=-1 reboot=k nomodule pci=off tsc=reliable " \
		     "no_timer_check rdinit=/init"

struct opts {
	const char *mode;
	const char *kernel, *initrd, *cmdline, *console, *unix_path;
	unsigned mem_mib;
	unsigned n, warmup;
	size_t tput_size;
	unsigned tput_budget_mib;
	unsigned timeout_s;
};

static const char *prog = "uf-bench-vsock";

static __attribute__((noreturn, format(printf, 2, 3))) void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s ours --kernel K --initrd I [--mem MiB] [--cmdline STR] [--console FILE] [COMMON]\n"
		"       %s fd --unix PATH [COMMON]\n"
		"COMMON: [-n N] [--warmup W] [--tput-size BYTES] [--tput-budget-mib MiB] [--timeout S]\n",
		prog, prog);
	exit(2);
}

static unsigned long num(const char *opt, const char *v, unsigned long lo, unsigned long hi)
{
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 0);
	if (errno || end == v || *end || x < lo || x > hi)
		die(2, "%s %s: expected a number in [%lu, %lu]", opt, v, lo, hi);
	return x;
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .mem_mib = 256, .n = 100, .warmup = 5, .tput_size = 1u << 20,
			    .tput_budget_mib = 64, .timeout_s = 120, .cmdline = OURS_CMDLINE };
	if (argc < 2)
		usage();
	o->mode = argv[1];
	if (strcmp(o->mode, "ours") && strcmp(o->mode, "fd"))
		usage();
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			die(2, "%s: missing value (or unknown option)", a);
		const char *v = argv[++i];
		if (!strcmp(a, "--kernel"))
			o->kernel = v;
		else if (!strcmp(a, "--initrd"))
			o->initrd = v;
		else if (!strcmp(a, "--cmdline"))
			o->cmdline = v;
		else if (!strcmp(a, "--console"))
			o->console = v;
		else if (!strcmp(a, "--mem"))
			o->mem_mib = (unsigned)num(a, v, 64, 4096);
		else if (!strcmp(a, "--unix"))
			o->unix_path = v;
		else if (!strcmp(a, "-n"))
			o->n = (unsigned)num(a, v, 1, 1000000);
		else if (!strcmp(a, "--warmup"))
			o->warmup = (unsigned)num(a, v, 0, 1000000);
		else if (!strcmp(a, "--tput-size"))
			o->tput_size = num(a, v, 1u << 20, UF_AGENT_MAX_PAYLOAD);
		else if (!strcmp(a, "--tput-budget-mib"))
			o->tput_budget_mib = (unsigned)num(a, v, 1, 1u << 20);
		else if (!strcmp(a, "--timeout"))
			o->timeout_s = (unsigned)num(a, v, 1, 86400);
		else
			die(2, "unknown option %s", a);
	}
	if (!strcmp(o->mode, "ours") && (!o->kernel || !o->initrd))
		die(2, "ours needs --kernel and --initrd");
	if (!strcmp(o->mode, "fd") && !o->unix_path)
		die(2, "fd needs --unix PATH");
	if (o->mem_mib % 2)
		die(2, "--mem %u: must be a multiple of 2 MiB", o->mem_mib);
}

/* ---- the measurement, the same for both transports ---- */

struct sizecase {
	const char *key;
	size_t len;
};

static const struct sizecase sizes[] = {
	{ "64b", 64 },
	{ "4k", 4096 },
	{ "1m", 1u << 20 },
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	for (; i < n; i++)
		p[i] = (uint8_t)(x >> (8 * (i % 8)));
}

/* Make call k's event distinct from every other: a stale or misrouted
 * reply cannot pass the comparison. */
static void stamp(uint8_t *p, size_t n, uint64_t k)
{
	memcpy(p, &k, n < 8 ? n : 8);
}

/* One timed echo: returns the round trip in ns; dies on any failure or
 * mismatch (checked after the clock stopped). */
static uint64_t echo(int fd, const uint8_t *ev, size_t len, uint64_t k, int timeout_ms)
{
	char id[32];
	snprintf(id, sizeof id, "b%llu", (unsigned long long)k);
	struct agent_invoke req = { .call_id = id, .event = ev, .len = len, .timeout_ms = timeout_ms };
	struct agent_result res;
	uint64_t t0 = now_ns();
	int rc = agent_client_invoke_req(fd, &req, &res);
	uint64_t dt = now_ns() - t0;
	if (rc < 0)
		die(1, "echo of %zu bytes (call %llu): %s", len, (unsigned long long)k,
		    rc == UF_FRAME_CLOSED ? "the agent closed the stream" : strerror(-rc));
	int ok = res.status == 200 && res.body_len == len && memcmp(res.body, ev, len) == 0;
	uint32_t st = res.status;
	size_t got = res.body_len;
	agent_result_free(&res);
	if (!ok)
		die(1, "echo of %zu bytes (call %llu) came back as %zu bytes with status %u%s", len,
		    (unsigned long long)k, got, st, got == len ? ", contents differ" : "");
	return dt;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n) (as bench/benchlib.py). */
static double pct_us(const uint64_t *sorted, size_t n, double p)
{
	double r = p / 100.0 * (double)n;
	size_t k = (size_t)r;
	if ((double)k < r)
		k++;
	k = k ? k - 1 : 0;
	if (k >= n)
		k = n - 1;
	return (double)sorted[k] / 1000.0;
}

static void measure(int fd, const struct opts *o, uint64_t hello_ns)
{
	int tmo = (int)o->timeout_s * 1000;
	size_t maxlen = o->tput_size > sizes[NSIZES - 1].len ? o->tput_size : sizes[NSIZES - 1].len;
	uint8_t *ev = malloc(maxlen);
	uint64_t *samp[NSIZES];
	if (!ev)
		die(1, "out of memory");
	uint64_t k = 1;

	for (size_t s = 0; s < NSIZES; s++) {
		size_t len = sizes[s].len;
		samp[s] = calloc(o->n, sizeof(uint64_t));
		if (!samp[s])
			die(1, "out of memory");
		fill(ev, len, s + 1);
		for (unsigned i = 0; i < o->warmup; i++, k++) {
			stamp(ev, len, k);
			(void)echo(fd, ev, len, k, tmo);
		}
		for (unsigned i = 0; i < o->n; i++, k++) {
			stamp(ev, len, k);
			samp[s][i] = echo(fd, ev, len, k, tmo);
		}
	}

	/* Throughput: echoes of tput_size until the budget went each way. */
	size_t tlen = o->tput_size;
	uint64_t budget = (uint64_t)o->tput_budget_mib << 20;
	unsigned calls = (unsigned)((budget + tlen - 1) / tlen);
	uint64_t busy = 0;
	fill(ev, tlen, 99);
	stamp(ev, tlen, k);
	(void)echo(fd, ev, tlen, k++, tmo);             /* warm-up */
	for (unsigned i = 0; i < calls; i++, k++) {
		stamp(ev, tlen, k);
		busy += echo(fd, ev, tlen, k, tmo);
	}
	double moved = 2.0 * (double)tlen * calls;  /* both directions */
	double mib_s = moved / (1024.0 * 1024.0) / ((double)busy / 1e9);

	printf("{\"transport\": \"%s\", \"n\": %u, \"warmup\": %u, \"hello_ms\": %.1f",
	       strcmp(o->mode, "ours") ? "unix-fd" : "vsock", o->n, o->warmup, (double)hello_ns / 1e6);
	uint64_t *sorted = malloc(o->n * sizeof(uint64_t));
	if (!sorted)
		die(1, "out of memory");
	for (size_t s = 0; s < NSIZES; s++) {
		memcpy(sorted, samp[s], o->n * sizeof(uint64_t));
		qsort(sorted, o->n, sizeof(uint64_t), cmp_u64);
		double sum = 0;
		for (unsigned i = 0; i < o->n; i++)
			sum += (double)sorted[i];
		printf(", \"rtt_%s_p50_us\": %.1f, \"rtt_%s_p99_us\": %.1f, \"rtt_%s_mean_us\": %.1f, "
		       "\"rtt_%s_min_us\": %.1f",
		       sizes[s].key, pct_us(sorted, o->n, 50), sizes[s].key, pct_us(sorted, o->n, 99),
		       sizes[s].key, sum / o->n / 1000.0, sizes[s].key, (double)sorted[0] / 1000.0);
	}
	free(sorted);
	printf(", \"throughput_mib_s\": %.2f, \"throughput_msg_bytes\": %zu, \"throughput_calls\": %u, "
	       "\"throughput_busy_s\": %.3f",
	       mib_s, tlen, calls, (double)busy / 1e9);
	for (size_t s = 0; s < NSIZES; s++) {
		printf(", \"samples_%s_us\": [", sizes[s].key);
		for (unsigned i = 0; i < o->n; i++)
			printf("%s%.1f", i ? ", " : "", (double)samp[s][i] / 1000.0);
		printf("]");
		free(samp[s]);
	}
	free(ev);
	/* The caller adds its transport's own figures and closes the object. */
}

static void hello(int fd, int timeout_ms)
{
	struct agent_hello h;
	int rc = agent_client_hello(fd, &h, timeout_ms);
	if (rc < 0)
		die(1, "hello from the agent: %s",
		    rc == UF_FRAME_CLOSED ? "the stream closed first" : strerror(-rc));
	if (strcmp(h.runtime, "echo") != 0)
		die(1, "the agent runs handler \"%s\", the benchmark needs \"echo\"", h.runtime);
}

static void shutdown_agent(int fd, int timeout_ms)
{
	int rc = agent_client_shutdown(fd, 0, timeout_ms);
	if (rc < 0)
		die(1, "shutdown: %s", strerror(-rc));
}

/* ---- ours: boot our VM, vsock ---- */

static int run_ours(const struct opts *o)
{
	static struct vmm_vm_thread vt;
	int console = -1;
	if (o->console) {
		console = open(o->console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (console < 0)
			die(1, "console %s: %s", o->console, strerror(errno));
	}
	struct vmm_vm_config cfg = { .mem_size = (uint64_t)o->mem_mib << 20, .console_fd = console,
				     .vsock_cid = 3 };
	uint64_t t0 = now_ns();
	if (vmm_vm_thread_start(&vt, &cfg, o->kernel, o->initrd, o->cmdline,
				(uint64_t)o->timeout_s * 1000000000ull))
		die(1, "boot: %s", vmm_strerror());
	int fd;
	int rc = vsock_host_connect_wait(vt.vm.vsock, UF_AGENT_VSOCK_PORT, 10000, &fd);
	if (rc < 0) {
		vmm_vm_thread_release(&vt);
		die(1, "connect to the agent's vsock port %u: %s", UF_AGENT_VSOCK_PORT, strerror(-rc));
	}
	int tmo = (int)o->timeout_s * 1000;
	hello(fd, tmo);
	struct vsock_stats s0, s1;
	vsock_host_stats(vt.vm.vsock, &s0);
	measure(fd, o, now_ns() - t0);
	vsock_host_stats(vt.vm.vsock, &s1);
	/* Device packets during the measurement (both directions carry data
	 * packets plus credit updates): a view of how the bytes were cut. */
	printf(", \"vsock_pkts_from_guest\": %llu, \"vsock_pkts_to_guest\": %llu}\n",
	       (unsigned long long)(s1.tx_pkts - s0.tx_pkts),
	       (unsigned long long)(s1.rx_pkts - s0.rx_pkts));
	fflush(stdout);
	shutdown_agent(fd, tmo);
	close(fd);
	if (vmm_vm_thread_join(&vt, 60ull * 1000000000ull) < 0) {
		vmm_vm_thread_release(&vt);
		die(1, "the guest still runs 60 s after Shutdown");
	}
	int clean = vt.exit.kind == VMM_EXIT_STATUS && vt.exit.status == 0;
	char detail[sizeof vt.exit.detail];
	snprintf(detail, sizeof detail, "%s", vt.exit.detail);
	vmm_vm_thread_release(&vt);
	if (console >= 0)
		close(console);
	if (!clean)
		die(1, "guest exit after Shutdown: %s", detail);
	return 0;
}

/* ---- fd: a unix stream socket (QEMU's virtio-serial chardev) ---- */

static int dial_unix(const char *path, int timeout_ms)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof a.sun_path)
		die(2, "--unix %s: path too long", path);
	strcpy(a.sun_path, path);
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die(1, "socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
			return fd;
		int err = errno;
		close(fd);
		if ((err != ENOENT && err != ECONNREFUSED) || now_ns() > deadline)
			die(1, "connect to %s: %s", path, strerror(err));
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static int run_fd(const struct opts *o)
{
	int tmo = (int)o->timeout_s * 1000;
	uint64_t t0 = now_ns();
	int fd = dial_unix(o->unix_path, tmo);
	hello(fd, tmo);
	measure(fd, o, now_ns() - t0);
	printf("}\n");
	fflush(stdout);
	shutdown_agent(fd, tmo);
	/* The guest powers off and its VMM closes the socket: wait for that. */
	char c;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, 60000);
	ssize_t r = n > 0 ? read(fd, &c, 1) : -1;
	close(fd);
	if (n == 0)
		die(1, "the peer kept the socket open 60 s after Shutdown");
	if (r > 0)
		die(1, "unexpected bytes from the agent after Shutdown");
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	parse(argc, argv, &o);
	return strcmp(o.mode, "ours") == 0 ? run_ours(&o) : run_fd(&o);
}
