/* snap_itest.c — snapshots against the real guest: boot with vsock, talk to
 * the agent, snapshot, destroy the VM, restore new VMs from the directory
 * (one, then a second one concurrently), talk to them, check the guest's
 * clock went on from the snapshot, snapshot a restored VM again, and check
 * that damaged or foreign snapshots are refused.  Runs where KVM runs Linux
 * guests (tests/integration/snapshot.sh via tools/kvm-run).
 *
 *   snap-itest KERNEL INITRD [TEST...]     (tests depend on the ones before)
 *
 * Closes with "N passed, N failed".
 */
#include "proto/agent_client.h"
#include "proto/snapshot.pb-c.h"
#include "snapshotter/snapshot.h"
#include "vmm/err.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMDLINE "console=ttyS0 quiet panic=-1 reboot=k nomodule pci=off tsc=reliable no_timer_check rdinit=/init"
#define IO_MS   30000
#define SEC     1000000000ull

static const char *kernel, *initrd;
static char work[PATH_MAX], snapdir[PATH_MAX + 16], snapdir2[PATH_MAX + 16];
static struct snap_origin origin;
static struct vmm_vm_config base_cfg = {.mem_size = 256ull << 20, .console_fd = STDERR_FILENO,
					 .vsock_cid = 3};
static struct vmm_vm_thread vm_a, vm_b;
static uint64_t t_snapshot;              /* vmm_now_ns() when the snapshot was taken */
static __thread char failmsg[512];

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		if (!(cond)) {                                                    \
			snprintf(failmsg, sizeof(failmsg), __VA_ARGS__);          \
			return -1;                                                \
		}                                                                 \
	} while (0)
#define CHECK_OK(expr, what)                                                      \
	do {                                                                      \
		int r_ = (expr);                                                  \
		CHECK(r_ == 0, "%s: %s (%s)", what, strerror(-r_), vmm_strerror()); \
	} while (0)

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static int open_agent(struct vmm_vm *vm, int *fd)
{
	int r = vsock_host_connect_wait(vm->vsock, UF_AGENT_VSOCK_PORT, 20000, fd);
	CHECK(r == 0, "connect to the agent: %s", strerror(-r));
	struct agent_hello h;
	r = agent_client_hello(*fd, &h, IO_MS);
	if (r)
		close(*fd);
	CHECK(r == 0, "hello: %s", strerror(-r));
	return 0;
}

static int echo(int fd, size_t len, uint8_t seed)
{
	uint8_t *buf = malloc(len ? len : 1);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 31);
	struct agent_result res;
	int r = agent_client_invoke(fd, "snap", buf, len, 0, &res);
	int ok = r == 0 && res.status == 200 && res.body_len == len &&
		 (len == 0 || memcmp(res.body, buf, len) == 0);
	if (r == 0)
		agent_result_free(&res);
	free(buf);
	CHECK(ok, "echo of %zu bytes: %s", len, r ? strerror(-r) : "wrong answer");
	return 0;
}

/* connect + hello + a few echoes + ping, on a fresh connection. */
static int talk(struct vmm_vm *vm, uint8_t seed)
{
	int fd;
	if (open_agent(vm, &fd))
		return -1;
	static const size_t sizes[] = {0, 1, 4096, 65537, 1 << 20};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (echo(fd, sizes[i], (uint8_t)(seed + i))) {
			close(fd);
			return -1;
		}
	int r = agent_client_ping(fd, IO_MS);
	close(fd);
	CHECK(r == 0, "ping: %s", strerror(-r));
	return 0;
}

/* The guest's kvm-clock as the guest reads it: pvclock system_time from the
 * page MSR_KVM_SYSTEM_TIME_NEW points at (KVM refreshes it on clock updates,
 * and always on the first entry after a restore). */
static int guest_pvclock_ns(struct vmm_vm *vm, const struct snap_meta *m, uint64_t *ns)
{
	uint64_t gpa = 0;
	for (uint32_t i = 0; i < m->vm.vcpu.nmsrs; i++)
		if (m->vm.vcpu.msrs[i].index == SNAP_MSR_KVM_SYSTEM_TIME_NEW)
			gpa = m->vm.vcpu.msrs[i].data;
	CHECK(gpa & 1, "the guest never enabled kvm-clock (MSR 0x%x = 0x%llx)",
	      SNAP_MSR_KVM_SYSTEM_TIME_NEW, (unsigned long long)gpa);
	volatile uint8_t *p = vmm_mem_ptr(&vm->mem, gpa & ~1ull, 32);
	CHECK(p, "pvclock page 0x%llx outside RAM", (unsigned long long)gpa);
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t v1 = *(volatile uint32_t *)p;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint64_t t = *(volatile uint64_t *)(p + 16);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(v1 & 1) && v1 == *(volatile uint32_t *)p) {
			*ns = t;
			return 0;
		}
	}
	CHECK(0, "pvclock page never stable");
}

static int kvm_clock_ns(struct vmm_vm *vm, uint64_t *ns)
{
	struct kvm_clock_data c = {0};
	CHECK(ioctl(vm->kvm.vmfd, KVM_GET_CLOCK, &c) == 0, "KVM_GET_CLOCK: %s", strerror(errno));
	*ns = c.clock;
	return 0;
}

static int restore(struct vmm_vm_thread *t, const char *dir, const char *name)
{
	struct snap_expect exp = {.origin = &origin};
	struct snap_image img;
	uint64_t t0 = vmm_now_ns();
	CHECK_OK(snap_open(dir, &exp, &img), "open snapshot");
	uint64_t t1 = vmm_now_ns(), create_us;
	struct snap_restore_stats rs;
	int r = snap_vm_thread_start(t, &base_cfg, &img, &rs, &create_us);
	uint64_t t2 = vmm_now_ns();
	snap_image_close(&img);
	CHECK_OK(r, "restore");
	printf("    %s: open+verify %.2f ms, vmm_vm_create %.2f ms, restore %.2f ms "
	       "(memory map %.3f, vCPU+VM state %.2f, devices %.2f), guest took the vsock reset "
	       "%.2f ms later; %.2f ms in all\n",
	       name, ms(t1 - t0), create_us / 1e3, rs.total_us / 1e3, rs.memory_us / 1e3,
	       rs.state_us / 1e3, rs.devices_us / 1e3, rs.reset_ack_us / 1e3, ms(t2 - t1));
	return 0;
}

/* 1. Boot, talk, snapshot (with a connection still open), destroy. */
static int t_boot_talk_snapshot(void)
{
	uint64_t t0 = vmm_now_ns();
	char cmdline[1024];
	const char *extra = getenv("SNAP_ITEST_APPEND");     /* e.g. loglevel=7 for debugging */
	snprintf(cmdline, sizeof(cmdline), "%s %s", CMDLINE, extra ? extra : "");
	CHECK_OK(vmm_vm_thread_start(&vm_a, &base_cfg, kernel, initrd, cmdline, 120 * SEC), "boot");
	printf("    boot to agent ready: %.0f ms\n", ms(vmm_now_ns() - t0));
	if (talk(&vm_a.vm, 1))
		return -1;
	int open_fd;
	if (open_agent(&vm_a.vm, &open_fd))
		return -1;
	vmm_vm_stop(&vm_a.vm);
	CHECK(vmm_vm_thread_join(&vm_a, 30 * SEC) == 0, "run thread did not stop");
	CHECK(vm_a.exit.kind == VMM_EXIT_STOPPED, "run ended with: %s", vm_a.exit.detail);
	struct snap_save_stats st;
	CHECK_OK(snap_save(&vm_a.vm, snapdir, &origin, 0, &st), "snapshot");
	t_snapshot = vmm_now_ns();
	printf("    snapshot: state %.2f ms, memory %.1f ms, total %.1f ms; RAM %llu MiB, "
	       "%llu non-zero pages (%.1f MiB), scanned %llu pages, memory.bin occupies %.1f MiB, "
	       "meta.pb %llu bytes, %llu writes via %s%s%s\n",
	       st.state_us / 1e3, st.memory_us / 1e3, st.total_us / 1e3,
	       (unsigned long long)(vm_a.vm.mem.size >> 20), (unsigned long long)st.mem.nonzero_pages,
	       st.mem.nonzero_pages * 4096.0 / (1 << 20), (unsigned long long)st.mem.scanned_pages,
	       st.mem_file_alloc / (double)(1 << 20), (unsigned long long)st.meta_bytes,
	       (unsigned long long)st.mem.writes, st.mem.io_uring ? "io_uring" : "pwrite",
	       st.mem.io_uring ? "" : ": ", st.mem.note);
	close(open_fd);
	uint64_t ram = vm_a.vm.mem.size;
	vmm_vm_thread_release(&vm_a);
	CHECK(st.mem.nonzero_pages > 100 && st.mem_file_alloc < ram / 2, "memory.bin is not sparse");
	return 0;
}

/* 2. A new VM from the directory: connections were reset, the listener
 * survived, echo works, and the guest's clock went on from the snapshot. */
static int t_restore_and_talk(void)
{
	if (restore(&vm_a, snapdir, "VM A"))
		return -1;
	CHECK(vm_a.vm.ready, "restored VM not marked ready");
	uint64_t t0 = vmm_now_ns();
	if (talk(&vm_a.vm, 2))
		return -1;
	printf("    VM A: first connect + hello + 5 echoes + ping after restore: %.1f ms\n",
	       ms(vmm_now_ns() - t0));
	struct vsock_stats vs;
	vsock_host_stats(vm_a.vm.vsock, &vs);
	CHECK(vs.ring_errors == 0 && vs.drop_bad_cid == 0, "vsock device errors after restore");

	struct snap_image img;
	struct snap_expect exp = {.skip_cpu_check = true};
	CHECK_OK(snap_open(snapdir, &exp, &img), "reopen");
	uint64_t at_snap = img.meta->vm.clock.clock, guest, host;
	int r = guest_pvclock_ns(&vm_a.vm, img.meta, &guest);
	snap_image_close(&img);
	if (r || kvm_clock_ns(&vm_a.vm, &host))
		return -1;
	uint64_t since = vmm_now_ns() - t_snapshot;
	printf("    clock: %.3f s at the snapshot, guest pvclock %.3f s, KVM clock %.3f s "
	       "(%.3f s of wall time since the snapshot)\n",
	       at_snap / 1e9, guest / 1e9, host / 1e9, since / 1e9);
	CHECK(guest >= at_snap && host >= guest, "guest clock went backwards");
	CHECK(host - at_snap <= since, "guest clock jumped by the time the VM was away");
	return 0;
}

struct talker {
	struct vmm_vm *vm;
	int rc;
	char msg[512];
};

static void *talk_thread(void *p)
{
	struct talker *t = p;
	t->rc = 0;
	for (int i = 0; i < 5 && !t->rc; i++)
		t->rc = talk(t->vm, (uint8_t)(i * 17));
	snprintf(t->msg, sizeof(t->msg), "%s", failmsg);
	return NULL;
}

/* 3. A second VM from the same snapshot while the first runs: both answer,
 * at the same time. */
static int t_second_clone_concurrently(void)
{
	if (restore(&vm_b, snapdir, "VM B"))
		return -1;
	struct talker ta = {.vm = &vm_a.vm}, tb = {.vm = &vm_b.vm};
	pthread_t a, b;
	uint64_t t0 = vmm_now_ns();
	CHECK(pthread_create(&a, NULL, talk_thread, &ta) == 0 &&
	      pthread_create(&b, NULL, talk_thread, &tb) == 0, "pthread_create");
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK(ta.rc == 0, "VM A: %.400s", ta.msg);
	CHECK(tb.rc == 0, "VM B: %.400s", tb.msg);
	printf("    A and B: 5 sessions each, concurrently, %.0f ms\n", ms(vmm_now_ns() - t0));
	/* Each powers off with its own status. */
	struct { struct vmm_vm_thread *t; int status; } v[] = {{&vm_a, 7}, {&vm_b, 9}};
	for (int i = 0; i < 2; i++) {
		int fd;
		if (open_agent(&v[i].t->vm, &fd))
			return -1;
		int r = agent_client_shutdown(fd, (uint32_t)v[i].status, IO_MS);
		close(fd);
		CHECK(r == 0, "shutdown: %s", strerror(-r));
	}
	for (int i = 0; i < 2; i++) {
		CHECK(vmm_vm_thread_join(v[i].t, 60 * SEC) == 0, "VM %c still running", 'A' + i);
		CHECK(v[i].t->exit.kind == VMM_EXIT_STATUS && v[i].t->exit.status == v[i].status,
		      "VM %c: %s", 'A' + i, v[i].t->exit.detail);
		vmm_vm_thread_release(v[i].t);
	}
	return 0;
}

/* 4. Templates chain: snapshot a restored VM (copy-on-write RAM), restore
 * that, talk. */
static int t_snapshot_of_a_restored_vm(void)
{
	if (restore(&vm_a, snapdir, "VM C") || talk(&vm_a.vm, 3))
		return -1;
	vmm_vm_stop(&vm_a.vm);
	CHECK(vmm_vm_thread_join(&vm_a, 30 * SEC) == 0, "run thread did not stop");
	struct snap_save_stats st;
	CHECK_OK(snap_save(&vm_a.vm, snapdir2, &origin, SNAP_MEM_PWRITE, &st), "snapshot");
	printf("    re-snapshot (pwrite): state %.2f ms, memory %.1f ms, total %.1f ms, %llu of %llu "
	       "pages scanned, %llu non-zero\n", st.state_us / 1e3, st.memory_us / 1e3,
	       st.total_us / 1e3, (unsigned long long)st.mem.scanned_pages,
	       (unsigned long long)st.mem.pages, (unsigned long long)st.mem.nonzero_pages);
	vmm_vm_thread_release(&vm_a);
	if (restore(&vm_b, snapdir2, "VM D") || talk(&vm_b.vm, 4))
		return -1;
	vmm_vm_thread_release(&vm_b);
	return 0;
}

/* ---- 5. refusals ---- */

static int copy_bytes(const char *from, const char *to, size_t cut, ssize_t flip, uint32_t version)
{
	int fd = open(from, O_RDONLY);
	CHECK(fd >= 0, "open %s", from);
	struct stat sb;
	fstat(fd, &sb);
	size_t n = (size_t)sb.st_size;
	uint8_t *b = malloc(n);
	CHECK(read(fd, b, n) == (ssize_t)n, "read %s", from);
	close(fd);
	if (version) {
		Ufsnap__SnapshotFile *f = ufsnap__snapshot_file__unpack(NULL, n, b);
		CHECK(f, "unpack");
		f->format_version = version;
		n = ufsnap__snapshot_file__pack(f, b);
		ufsnap__snapshot_file__free_unpacked(f, NULL);
	}
	if (flip >= 0)
		b[flip] ^= 0x04;
	if (cut)
		n = cut;
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, b, n) == (ssize_t)n, "write %s", to);
	close(fd);
	free(b);
	return 0;
}

static int expect_refusal(const char *dir, const struct snap_expect *exp, int want, const char *what)
{
	struct snap_image img;
	int r = snap_open(dir, exp, &img);
	if (r == 0)
		snap_image_close(&img);
	CHECK(r == want, "%s: got %d (%s), expected %d", what, r, r ? vmm_strerror() : "accepted", want);
	printf("    %s %-26s %s\n", r ? "refused " : "accepted", what, r ? vmm_strerror() : "");
	return 0;
}

static int t_damaged_snapshots_refused(void)
{
	char bad[PATH_MAX + 32], meta[PATH_MAX + 48], mem[PATH_MAX + 48], good_meta[PATH_MAX + 32];
	char good_mem[PATH_MAX + 32];
	snprintf(bad, sizeof(bad), "%s/bad", work);
	snprintf(meta, sizeof(meta), "%s/" SNAP_META_FILE, bad);
	snprintf(mem, sizeof(mem), "%s/" SNAP_MEM_FILE, bad);
	snprintf(good_meta, sizeof(good_meta), "%s/" SNAP_META_FILE, snapdir);
	snprintf(good_mem, sizeof(good_mem), "%s/" SNAP_MEM_FILE, snapdir);
	CHECK(mkdir(bad, 0755) == 0 && link(good_mem, mem) == 0, "set up the damaged copy: %s", strerror(errno));
	struct stat sb;
	stat(good_meta, &sb);
	size_t len = (size_t)sb.st_size;
	struct snap_expect exp = {.origin = &origin};

	if (copy_bytes(good_meta, meta, 0, -1, 0) || expect_refusal(bad, &exp, 0, "(intact copy)") ||
	    copy_bytes(good_meta, meta, len / 2, -1, 0) ||
	    expect_refusal(bad, &exp, -EBADMSG, "truncated meta.pb:") ||
	    copy_bytes(good_meta, meta, 0, (ssize_t)(len / 3), 0) ||
	    expect_refusal(bad, &exp, -EBADMSG, "flipped byte:") ||
	    copy_bytes(good_meta, meta, 0, -1, SNAP_FORMAT_VERSION + 1) ||
	    expect_refusal(bad, &exp, -EPROTONOSUPPORT, "newer format version:") ||
	    copy_bytes(good_meta, meta, 0, 1, 0) ||
	    expect_refusal(bad, &exp, -EINVAL, "wrong magic:"))
		return -1;
	struct snap_origin other = origin;
	other.agent[0] ^= 1;
	struct snap_expect exp_other = {.origin = &other};
	if (copy_bytes(good_meta, meta, 0, -1, 0) ||
	    expect_refusal(bad, &exp_other, -ESTALE, "another agent:"))
		return -1;
	/* This host's real CPUID with another vendor. */
	struct kvm_cpuid_entry2 host[SNAP_MAX_CPUID];
	uint32_t n;
	int kfd = open("/dev/kvm", O_RDWR);
	CHECK(kfd >= 0 && snap_supported_cpuid(kfd, host, SNAP_MAX_CPUID, &n) == 0, "supported CPUID");
	close(kfd);
	for (uint32_t i = 0; i < n; i++)
		if (host[i].function == 0)
			host[i].ebx ^= 0x20202020;   /* change the vendor's case */
	struct snap_expect exp_cpu = {.origin = &origin, .host_cpuid = host, .n_host_cpuid = n};
	if (expect_refusal(bad, &exp_cpu, -ENOEXEC, "other CPU vendor:"))
		return -1;
	CHECK(unlink(mem) == 0, "unlink");
	int fd = open(mem, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, (off_t)(base_cfg.mem_size - 4096)) == 0, "short memory.bin");
	close(fd);
	if (expect_refusal(bad, &exp, -EBADMSG, "short memory.bin:"))
		return -1;

	/* A good image into a VM of another size is refused before it runs. */
	struct snap_image img;
	CHECK_OK(snap_open(snapdir, &exp, &img), "open");
	struct vmm_vm vm;
	struct vmm_vm_config cfg = base_cfg;
	cfg.mem_size = 128ull << 20;
	int r = vmm_vm_create(&vm, &cfg);
	if (r == 0) {
		r = snap_restore(&vm, &img, NULL);
		vmm_vm_release(&vm);
	}
	snap_image_close(&img);
	CHECK(r == -EINVAL, "restore into 128 MiB: %d (%s)", r, vmm_strerror());
	printf("    refused %-26s %s\n", "VM of another size:", vmm_strerror());
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{"boot_talk_snapshot", t_boot_talk_snapshot},
	{"restore_and_talk", t_restore_and_talk},
	{"second_clone_concurrently", t_second_clone_concurrently},
	{"snapshot_of_a_restored_vm", t_snapshot_of_a_restored_vm},
	{"damaged_snapshots_refused", t_damaged_snapshots_refused},
};

static void hash_or_zero(const char *path, uint8_t *out)
{
	if (snap_sha256_file(path, out))
		memset(out, 0, SNAP_SHA256_LEN);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: snap-itest KERNEL INITRD [TEST...]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	kernel = argv[1];
	initrd = argv[2];
	snprintf(work, sizeof(work), "/tmp/uf-snap-itest.XXXXXX");
	if (!mkdtemp(work)) {
		perror("mkdtemp");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	snprintf(snapdir, sizeof(snapdir), "%s/snap", work);
	snprintf(snapdir2, sizeof(snapdir2), "%s/snap2", work);
	hash_or_zero(kernel, origin.kernel);
	hash_or_zero(initrd, origin.initrd);
	hash_or_zero("build/bin/guest-agent", origin.agent);

	int passed = 0, failed = 0;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		bool want = argc == 3;
		for (int a = 3; a < argc; a++)
			want |= strcmp(argv[a], tests[i].name) == 0;
		if (!want)
			continue;
		uint64_t t0 = vmm_now_ns();
		failmsg[0] = 0;
		if (tests[i].fn() == 0) {
			passed++;
			printf("ok   %s (%.1f s)\n", tests[i].name, (double)(vmm_now_ns() - t0) / 1e9);
		} else {
			failed++;
			printf("FAIL %s: %s\n", tests[i].name, failmsg);
		}
	}
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", work);
	if (system(cmd) != 0)
		fprintf(stderr, "snap-itest: could not remove %s\n", work);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
