/* uf_vm_main.c — `uf-vm`, the VMM's debug front end: boot a kernel and an
 * initramfs, stream the console, report the agent's ready time, and exit
 * with the guest's status.
 *
 * Exit codes: the guest's own status when it reports one on the exit port;
 * 0 for an orderly reset after the agent was ready; 1 VMM error (bad kernel,
 * no KVM, ...); 2 usage; 3 guest crashed or reset before it was ready;
 * 4 timeout.
 *
 * Snapshots, for debugging (snapshotter/snapshot.h): `boot
 * --snapshot-after-ready DIR` boots, waits for the agent's ready signal,
 * pauses the VM, writes the snapshot and exits 0; `restore DIR` makes a new
 * VM from it and runs it like `boot` does.
 */
#include "proto/agent_client.h"
#include "snapshotter/snapshot.h"
#include "vmm/err.h"
#include "vmm/vm.h"
#include "vmm/vm_thread.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CMDLINE \
	"console=ttyS0 quiet panic=-1 reboot=k nomodule pci=off tsc=reliable no_timer_check rdinit=/init"

enum { EXIT_VMM = 1, EXIT_USAGE = 2, EXIT_CRASH = 3, EXIT_TIMEOUT = 4 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uf-vm boot --kernel FILE [--initrd FILE] [--mem MiB] [--cmdline STR]\n"
		"                  [--append STR] [--console FILE|-] [--timeout S] [--run-timeout S]\n"
		"                  [--invoke DATA] [--vsock-cid N]\n"
		"                  [--snapshot-after-ready DIR [--agent FILE]]\n"
		"       uf-vm restore DIR [--console FILE|-] [--run-timeout S]\n"
		"  --kernel       uncompressed vmlinux (ELF) or bzImage\n"
		"  --initrd       initramfs (cpio)\n"
		"  --mem          guest memory in MiB (default 128)\n"
		"  --cmdline      kernel command line (default: %s)\n"
		"  --append       appended to the command line\n"
		"  --console      where the guest console goes (default - = stdout)\n"
		"  --timeout      seconds to wait for the agent's ready signal (default 60)\n"
		"  --run-timeout  seconds the whole run may take (default 0 = no limit)\n"
		"  --invoke       with a virtio-vsock device (guest CID 3): once the agent is\n"
		"                 ready, send DATA as an invocation over vsock, print the\n"
		"                 answer and the round trip, then shut the guest down\n"
		"  --vsock-cid    give the guest a virtio-vsock device with this CID (>= 3)\n"
		"  --snapshot-after-ready  once the agent is ready, pause the VM, snapshot it\n"
		"                 into DIR (atomically replacing a snapshot there) and exit\n"
		"  --agent        the agent binary in the initrd (its sha256 is recorded)\n"
		"restore: a new VM from the snapshot in DIR, run until the guest exits\n"
		"exit status: the guest's status; 1 VMM error, 2 usage, 3 guest crash, 4 timeout\n",
		DEFAULT_CMDLINE);
}

static int parse_seconds(const char *s, uint64_t *ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || v < 0 || v > 1e6)
		return -1;
	*ns = (uint64_t)(v * 1e9);
	return 0;
}

/* --invoke: the request/response path end to end, host -> vsock -> agent. */
static int boot_and_invoke(const struct vmm_vm_config *cfg, const char *kernel, const char *initrd,
			   const char *cmdline, const char *data, uint64_t ready_ns)
{
	static struct vmm_vm_thread vt;
	int fd = -1, rc = EXIT_VMM, r;

	if (vmm_vm_thread_start(&vt, cfg, kernel, initrd, cmdline, ready_ns)) {
		fprintf(stderr, "uf-vm: %s\n", vmm_strerror());
		return vt.joined && vt.exit.kind == VMM_EXIT_TIMEOUT ? EXIT_TIMEOUT : EXIT_VMM;
	}
	struct vmm_vm *vm = &vt.vm;
	fprintf(stderr, "uf-vm: agent ready after %.3f ms\n", (double)(vm->t_ready - vm->t_create) / 1e6);
	uint64_t t0 = vmm_now_ns();
	if ((r = vsock_host_connect_wait(vm->vsock, UF_AGENT_VSOCK_PORT, 10000, &fd))) {
		fprintf(stderr, "uf-vm: vsock connect to the agent's port %u: %s\n", UF_AGENT_VSOCK_PORT, strerror(-r));
		goto out;
	}
	struct agent_hello hello;
	if ((r = agent_client_hello(fd, &hello, 30000))) {
		fprintf(stderr, "uf-vm: agent hello: %s\n", strerror(-r));
		goto out;
	}
	uint64_t t1 = vmm_now_ns();
	struct agent_result res;
	if ((r = agent_client_invoke(fd, "uf-vm-1", data, strlen(data), 0, &res))) {
		fprintf(stderr, "uf-vm: invoke: %s\n", strerror(-r));
		goto out;
	}
	uint64_t t2 = vmm_now_ns();
	printf("%.*s\n", (int)res.body_len, (const char *)res.body);
	fprintf(stderr, "uf-vm: agent %s (%s runtime) answered %u with %zu bytes: connect+hello %.3f ms, round trip %.3f ms\n",
		hello.build, hello.runtime, res.status, res.body_len, (double)(t1 - t0) / 1e6,
		(double)(t2 - t1) / 1e6);
	rc = res.status == 200 ? 0 : EXIT_CRASH;
	agent_result_free(&res);
	if ((r = agent_client_shutdown(fd, 0, 30000)) || (r = vmm_vm_thread_join(&vt, 30ull * 1000000000ull))) {
		fprintf(stderr, "uf-vm: guest did not power off after Shutdown: %s\n", strerror(-r));
		rc = EXIT_CRASH;
	}
out:
	if (fd >= 0)
		close(fd);
	vmm_vm_thread_release(&vt);
	return rc;
}

static void print_save_stats(const char *dir, const struct snap_save_stats *st, uint64_t ram)
{
	fprintf(stderr, "uf-vm: snapshot %s: state %.3f ms, memory %.3f ms, total %.3f ms; %" PRIu64
		" of %" PRIu64 " pages non-zero, memory.bin occupies %.1f of %" PRIu64 " MiB (%s%s%s)\n",
		dir, st->state_us / 1e3, st->memory_us / 1e3, st->total_us / 1e3,
		st->mem.nonzero_pages, st->mem.pages, st->mem_file_alloc / 1048576.0, ram >> 20,
		st->mem.io_uring ? "io_uring" : "pwrite", st->mem.io_uring ? "" : ": ", st->mem.note);
}

/* --snapshot-after-ready: boot on a thread, pause at ready, snapshot. */
static int boot_and_snapshot(const struct vmm_vm_config *cfg, const char *kernel, const char *initrd,
			     const char *cmdline, uint64_t ready_ns, const char *dir, const char *agent)
{
	static struct vmm_vm_thread vt;
	struct snap_origin origin = {0};
	if (snap_sha256_file(kernel, origin.kernel) || (initrd && snap_sha256_file(initrd, origin.initrd)) ||
	    (agent && snap_sha256_file(agent, origin.agent))) {
		fprintf(stderr, "uf-vm: %s\n", vmm_strerror());
		return EXIT_VMM;
	}
	if (vmm_vm_thread_start(&vt, cfg, kernel, initrd, cmdline, ready_ns)) {
		fprintf(stderr, "uf-vm: %s\n", vmm_strerror());
		return vt.joined && vt.exit.kind == VMM_EXIT_TIMEOUT ? EXIT_TIMEOUT : EXIT_VMM;
	}
	fprintf(stderr, "uf-vm: agent ready after %.3f ms\n",
		(double)(vt.vm.t_ready - vt.vm.t_create) / 1e6);
	int rc = EXIT_VMM;
	vmm_vm_stop(&vt.vm);
	if (vmm_vm_thread_join(&vt, 30ull * 1000000000ull)) {
		fprintf(stderr, "uf-vm: the vCPU did not stop\n");
	} else if (vt.exit.kind != VMM_EXIT_STOPPED) {
		fprintf(stderr, "uf-vm: the guest ended before the snapshot: %s\n", vt.exit.detail);
		rc = EXIT_CRASH;
	} else {
		struct snap_save_stats st;
		if (snap_save(&vt.vm, dir, &origin, 0, &st) == 0) {
			print_save_stats(dir, &st, vt.vm.mem.size);
			rc = 0;
		} else {
			fprintf(stderr, "uf-vm: snapshot: %s\n", vmm_strerror());
		}
	}
	vmm_vm_thread_release(&vt);
	return rc;
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{"console", required_argument, 0, 'o'}, {"run-timeout", required_argument, 0, 'T'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	const char *console = "-";
	uint64_t total_ns = 0;
	int c, rc = EXIT_VMM;
	while ((c = getopt_long(argc, argv, "o:T:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': console = optarg; break;
		case 'T':
			if (parse_seconds(optarg, &total_ns)) {
				fprintf(stderr, "uf-vm: --run-timeout %s: not a number of seconds\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *dir = argv[optind];
	int console_fd = STDOUT_FILENO;
	if (strcmp(console, "-") != 0 &&
	    (console_fd = open(console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "uf-vm: console %s: %s\n", console, strerror(errno));
		return EXIT_VMM;
	}
	struct snap_image img;
	struct snap_restore_stats rs;
	struct vmm_vm vm;
	struct vmm_vm_config cfg = {.console_fd = console_fd};
	uint64_t t0 = vmm_now_ns();
	if (snap_open(dir, NULL, &img)) {
		fprintf(stderr, "uf-vm: %s: %s\n", dir, vmm_strerror());
		goto out;
	}
	snap_vm_config(&img, &cfg);
	if (vmm_vm_create(&vm, &cfg)) {
		fprintf(stderr, "uf-vm: %s\n", vmm_strerror());
		goto out_img;
	}
	uint64_t t1 = vmm_now_ns();
	if (snap_restore(&vm, &img, &rs)) {
		fprintf(stderr, "uf-vm: restore: %s\n", vmm_strerror());
		goto out_vm;
	}
	fprintf(stderr, "uf-vm: restored %s: open+create %.3f ms, restore %.3f ms (memory %.3f, "
		"state %.3f, devices %.3f)\n", dir, (double)(t1 - t0) / 1e6, rs.total_us / 1e3,
		rs.memory_us / 1e3, rs.state_us / 1e3, rs.devices_us / 1e3);
	struct vmm_exit ex;
	if (vmm_vm_run(&vm, 0, total_ns, &ex)) {
		fprintf(stderr, "uf-vm: %s\n", ex.detail);
		goto out_vm;
	}
	rc = ex.kind == VMM_EXIT_STATUS ? ex.status : ex.kind == VMM_EXIT_RESET ? 0 :
	     ex.kind == VMM_EXIT_TIMEOUT ? EXIT_TIMEOUT : ex.kind == VMM_EXIT_CRASH ? EXIT_CRASH : EXIT_VMM;
	fprintf(stderr, "uf-vm: exit=\"%s\" exits=%" PRIu64 "\n", ex.detail, vm.exits);
out_vm:
	vmm_vm_release(&vm);
out_img:
	snap_image_close(&img);
out:
	if (console_fd != STDOUT_FILENO)
		close(console_fd);
	return rc;
}

static int cmd_boot(int argc, char **argv)
{
	static const struct option opts[] = {
		{"kernel", required_argument, 0, 'k'}, {"initrd", required_argument, 0, 'i'},
		{"mem", required_argument, 0, 'm'},    {"cmdline", required_argument, 0, 'c'},
		{"append", required_argument, 0, 'a'}, {"console", required_argument, 0, 'o'},
		{"timeout", required_argument, 0, 't'}, {"run-timeout", required_argument, 0, 'T'},
		{"invoke", required_argument, 0, 'I'}, {"help", no_argument, 0, 'h'},
		{"vsock-cid", required_argument, 0, 'V'},
		{"snapshot-after-ready", required_argument, 0, 'S'},
		{"agent", required_argument, 0, 'A'},
		{0, 0, 0, 0},
	};
	const char *kernel = NULL, *initrd = NULL, *console = "-", *append = NULL;
	const char *cmdline = DEFAULT_CMDLINE, *invoke = NULL;
	const char *snap_dir = NULL, *agent = NULL;
	uint64_t mem_mib = 128, ready_ns = 60ull * 1000000000ull, total_ns = 0, vsock_cid = 0;
	int c;

	while ((c = getopt_long(argc, argv, "k:i:m:c:a:o:t:T:I:h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'S': snap_dir = optarg; break;
		case 'A': agent = optarg; break;
		case 'V':
			errno = 0;
			vsock_cid = strtoull(optarg, &end, 10);
			if (errno || *end || vsock_cid < 3 || vsock_cid > UINT32_MAX) {
				fprintf(stderr, "uf-vm: --vsock-cid %s: not a guest CID (3 .. 2^32-1)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'k': kernel = optarg; break;
		case 'i': initrd = optarg; break;
		case 'c': cmdline = optarg; break;
		case 'a': append = optarg; break;
		case 'o': console = optarg; break;
		case 'I': invoke = optarg; break;
		case 'm':
			errno = 0;
			mem_mib = strtoull(optarg, &end, 10);
			if (errno || *end || mem_mib == 0 || mem_mib > (VMM_MEM_MAX >> 20)) {
				fprintf(stderr, "uf-vm: --mem %s: not a size in MiB up to %llu\n",
					optarg, VMM_MEM_MAX >> 20);
				return EXIT_USAGE;
			}
			break;
		case 't':
		case 'T':
			if (parse_seconds(optarg, c == 't' ? &ready_ns : &total_ns)) {
				fprintf(stderr, "uf-vm: --%s %s: not a number of seconds\n",
					c == 't' ? "timeout" : "run-timeout", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!kernel || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (mem_mib % 2) {
		fprintf(stderr, "uf-vm: --mem must be a multiple of 2 MiB\n");
		return EXIT_USAGE;
	}

	char *full = NULL;
	if (asprintf(&full, "%s%s%s", cmdline, append ? " " : "", append ? append : "") < 0) {
		fprintf(stderr, "uf-vm: out of memory\n");
		return EXIT_VMM;
	}

	int console_fd = STDOUT_FILENO, own_console = 0;
	if (strcmp(console, "-") != 0) {
		console_fd = open(console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (console_fd < 0) {
			fprintf(stderr, "uf-vm: console %s: %s\n", console, strerror(errno));
			free(full);
			return EXIT_VMM;
		}
		own_console = 1;
	}

	int rc;
	struct vmm_vm vm;
	struct vmm_vm_config cfg = {.mem_size = mem_mib << 20, .console_fd = console_fd,
				    .vsock_cid = vsock_cid};
	if (snap_dir) {
		rc = boot_and_snapshot(&cfg, kernel, initrd, full, ready_ns, snap_dir, agent);
		goto out;
	}
	if (invoke) {
		cfg.vsock_cid = 3;
		rc = boot_and_invoke(&cfg, kernel, initrd, full, invoke, ready_ns);
		goto out;
	}
	if (vmm_vm_create(&vm, &cfg)) {
		fprintf(stderr, "uf-vm: %s\n", vmm_strerror());
		rc = EXIT_VMM;
		goto out;
	}
	if (vmm_vm_boot(&vm, kernel, initrd, full)) {
		fprintf(stderr, "uf-vm: %s\n", vmm_strerror());
		rc = EXIT_VMM;
		goto out_vm;
	}

	struct vmm_exit ex;
	if (vmm_vm_run(&vm, ready_ns, total_ns, &ex)) {
		fprintf(stderr, "uf-vm: %s\n", ex.detail);
		rc = EXIT_VMM;
		goto out_vm;
	}
	uint64_t end = vmm_now_ns();
	switch (ex.kind) {
	case VMM_EXIT_STATUS: rc = ex.status; break;
	case VMM_EXIT_RESET: rc = vm.ready ? 0 : EXIT_CRASH; break;
	case VMM_EXIT_CRASH: rc = EXIT_CRASH; break;
	case VMM_EXIT_TIMEOUT: rc = EXIT_TIMEOUT; break;
	default: rc = EXIT_VMM;
	}
	if (ex.kind == VMM_EXIT_RESET && !vm.ready)
		fprintf(stderr, "uf-vm: guest reset before the agent was ready (kernel panic? see the console)\n");
	else if (rc)
		fprintf(stderr, "uf-vm: %s\n", ex.detail);
	if (vm.ready)
		fprintf(stderr, "uf-vm: agent ready after %.3f ms (VMM setup %.3f ms, guest %.3f ms)\n",
			(double)(vm.t_ready - vm.t_create) / 1e6,
			(double)(vm.t_first_run - vm.t_create) / 1e6,
			(double)(vm.t_ready - vm.t_first_run) / 1e6);
	fprintf(stderr, "uf-vm: stats ready_us=%" PRIu64 " setup_us=%" PRIu64 " total_us=%" PRIu64
		" exits=%" PRIu64 " exit=\"%s\"\n",
		vm.ready ? (vm.t_ready - vm.t_create) / 1000 : 0,
		(vm.t_first_run - vm.t_create) / 1000, (end - vm.t_create) / 1000, vm.exits, ex.detail);
out_vm:
	vmm_vm_release(&vm);
out:
	if (own_console)
		close(console_fd);
	free(full);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "boot") == 0)
		return cmd_boot(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "restore") == 0)
		return cmd_restore(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return EXIT_USAGE;
}
