/* test_jail.c — the worker jail (forker/worker/jail.h): a forked child
 * enters a jail holding one test directory, then checks from inside what
 * it can see and do; the parent checks how it ended (the supervisor
 * mirrors the jailed child's exit status or signal).  Needs root, like the
 * jail; SECURITY.md's allow-list tables are compared with the code. */
#include "forker/worker/jail.h"
#include "runtimed/seccomp.h"
#include "tests/unit/ut.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* Inside the jail: no stdio buffers to flush, no atexit work. */
#define IN_CHECK(cond)                                                              \
	do {                                                                        \
		if (!(cond)) {                                                      \
			char m_[200];                                               \
			int n_ = snprintf(m_, sizeof(m_), "  jailed: %s:%d: %s (errno %d)\n", \
					  __FILE__, __LINE__, #cond, errno);        \
			if (write(2, m_, (size_t)n_) < 0)                            \
				_exit(3);                                           \
			_exit(1);                                                   \
		}                                                                   \
	} while (0)

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/uf-jail-XXXXXX");
	UT_ASSERT(mkdtemp(dir));
	char p[128];
	snprintf(p, sizeof(p), "%s/snap", dir);
	FILE *f = fopen(p, "w");
	UT_ASSERT(f);
	fputs("template bytes", f);
	UT_EQ(fclose(f), 0);
}

static void rm_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	UT_EQ(system(cmd), 0);
}

/* Run `fn` jailed (dir bound with `mode`); returns the wait status. */
static int run_jailed(void (*fn)(void), enum jail_bind mode, enum jail_seccomp sc)
{
	if (geteuid() != 0) {
		printf("    (not root: the jail needs root; skipped)\n");
		exit(0);
	}
	make_dir();
	fflush(NULL);
	pid_t pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		struct jail_spec js = {.kvm = access("/dev/kvm", R_OK | W_OK) == 0, .keep_fd = -1,
				       .seccomp = sc};
		if (jail_add(&js, dir, mode) || jail_enter(&js))
			_exit(99);
		fn();
		_exit(0);
	}
	int st;
	UT_EQ(waitpid(pid, &st, 0), pid);
	rm_dir();
	return st;
}

static void expect_exit(int st, int code)
{
	if (WIFSIGNALED(st))
		UT_FAIL("jailed child killed by signal %d", WTERMSIG(st));
	UT_ASSERT(WIFEXITED(st));
	UT_EQ(WEXITSTATUS(st), code);
}

static void expect_sigsys(int st)
{
	UT_ASSERT(WIFSIGNALED(st));
	UT_EQ(WTERMSIG(st), SIGSYS);
}

static void status_field(const char *key, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/status", "r");
	IN_CHECK(f);
	char line[256];
	out[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			const char *v = line + strlen(key) + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			snprintf(out, n, "%.*s", (int)strcspn(v, "\n"), v);
		}
	fclose(f);
}

static void in_view(void)
{
	/* The host is gone: only the jail's own entries at the top. */
	IN_CHECK(access("/etc/passwd", F_OK) < 0 && errno == ENOENT);
	IN_CHECK(access("/usr", F_OK) < 0);
	DIR *d = opendir("/");
	IN_CHECK(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		IN_CHECK(strcmp(e->d_name, "tmp") == 0 || strcmp(e->d_name, "proc") == 0 ||
			 strcmp(e->d_name, "dev") == 0);
		n++;
	}
	closedir(d);
	IN_CHECK(n >= 2);
	/* The bound directory reads, read-only; the root is read-only. */
	char p[128], buf[32] = {0};
	snprintf(p, sizeof(p), "%s/snap", dir);
	int fd = open(p, O_RDONLY);
	IN_CHECK(fd >= 0);
	IN_CHECK(read(fd, buf, sizeof(buf) - 1) == 14 && strcmp(buf, "template bytes") == 0);
	close(fd);
	IN_CHECK(open(p, O_WRONLY) < 0 && errno == EROFS);
	IN_CHECK(mkdir("/x", 0700) < 0 && errno == EROFS);
	/* Own PID and UTS namespaces; a procfs showing only itself. */
	IN_CHECK(getpid() == 1);
	struct utsname u;
	IN_CHECK(uname(&u) == 0 && strcmp(u.nodename, "uf-jail") == 0);
	IN_CHECK(access("/proc/2", F_OK) < 0);
	/* No fd past stderr survived. */
	IN_CHECK(fcntl(3, F_GETFD) < 0 && errno == EBADF);
}

UT_TEST(jail_sees_only_its_root)
{
	expect_exit(run_jailed(in_view, JAIL_RO, JAIL_SECCOMP_KILL), 0);
}

static void in_status(void)
{
	char v[64];
	status_field("CapEff", v, sizeof(v));
	IN_CHECK(strcmp(v, "0000000000000000") == 0);
	status_field("CapPrm", v, sizeof(v));
	IN_CHECK(strcmp(v, "0000000000000000") == 0);
	status_field("CapBnd", v, sizeof(v));
	IN_CHECK(strcmp(v, "0000000000000000") == 0);
	status_field("CapAmb", v, sizeof(v));
	IN_CHECK(strcmp(v, "0000000000000000") == 0);
	status_field("NoNewPrivs", v, sizeof(v));
	IN_CHECK(strcmp(v, "1") == 0);
	status_field("Seccomp", v, sizeof(v));
	IN_CHECK(strcmp(v, "2") == 0);
}

UT_TEST(jail_no_caps_no_new_privs_seccomp)
{
	expect_exit(run_jailed(in_status, JAIL_RO, JAIL_SECCOMP_KILL), 0);
}

static void in_socket(void)
{
	syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	_exit(5); /* must not get here */
}

UT_TEST(jail_denied_syscall_kills)
{
	expect_sigsys(run_jailed(in_socket, JAIL_RO, JAIL_SECCOMP_KILL));
}

static void in_tiocsti(void)
{
	char c = 'x';
	ioctl(0, TIOCSTI, &c);
	_exit(5);
}

UT_TEST(jail_denied_ioctl_kills)
{
	expect_sigsys(run_jailed(in_tiocsti, JAIL_RO, JAIL_SECCOMP_KILL));
}

static void in_fork(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	_exit(5);
}

UT_TEST(jail_fork_kills)
{
	if (SANITIZED) {
		printf("    (sanitizer build: clone is open for the leak checker; skipped)\n");
		return;
	}
	expect_sigsys(run_jailed(in_fork, JAIL_RO, JAIL_SECCOMP_KILL));
}

static void in_exec_map(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	_exit(5);
}

UT_TEST(jail_exec_mapping_kills)
{
	expect_sigsys(run_jailed(in_exec_map, JAIL_RO, JAIL_SECCOMP_KILL));
}

static void *thread_fn(void *arg)
{
	*(int *)arg = 42;
	return NULL;
}

static void in_allowed(void)
{
	/* Threads, memory, eventfd-style work and the KVM ioctls by number. */
	pthread_t t;
	int v = 0;
	IN_CHECK(pthread_create(&t, NULL, thread_fn, &v) == 0);
	IN_CHECK(pthread_join(t, NULL) == 0 && v == 42);
	void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	IN_CHECK(m != MAP_FAILED);
	IN_CHECK(madvise(m, 1 << 20, MADV_DONTNEED) == 0);
	IN_CHECK(munmap(m, 1 << 20) == 0);
	int sv[2];
	IN_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	IN_CHECK(write(sv[0], "k", 1) == 1);
	char c;
	IN_CHECK(read(sv[1], &c, 1) == 1 && c == 'k');
	struct termios tio;
	IN_CHECK(ioctl(sv[0], TCGETS, &tio) < 0 && errno == ENOTTY);
	close(sv[0]);
	close(sv[1]);
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm >= 0) {
		IN_CHECK(ioctl(kvm, KVM_GET_API_VERSION, 0) == KVM_API_VERSION);
		close(kvm);
	}
	/* A refused-softly entry: io_uring says ENOSYS instead of killing. */
	IN_CHECK(syscall(SYS_io_uring_setup, 1, NULL) < 0 && errno == ENOSYS);
}

UT_TEST(jail_allowed_calls_work)
{
	expect_exit(run_jailed(in_allowed, JAIL_RO, JAIL_SECCOMP_KILL), 0);
}

static void in_rw_new(void)
{
	char p[128], q[128];
	snprintf(p, sizeof(p), "%s/workingset.tmp", dir);
	snprintf(q, sizeof(q), "%s/workingset", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	IN_CHECK(fd >= 0);
	IN_CHECK(write(fd, "ws", 2) == 2);
	close(fd);
	IN_CHECK(rename(p, q) == 0);
	/* The snapshot file stays as it was. */
	snprintf(p, sizeof(p), "%s/snap", dir);
	IN_CHECK(open(p, O_WRONLY) < 0 && errno == EROFS);
	IN_CHECK(unlink(p) < 0 && errno == EBUSY);
	IN_CHECK(rename(q, p) < 0 && errno == EBUSY);
}

UT_TEST(jail_template_dir_new_files_only)
{
	expect_exit(run_jailed(in_rw_new, JAIL_RW_NEW, JAIL_SECCOMP_KILL), 0);
}

static void in_exit7(void)
{
	_exit(7);
}

UT_TEST(jail_supervisor_mirrors_exit)
{
	expect_exit(run_jailed(in_exit7, JAIL_RO, JAIL_SECCOMP_NONE), 7);
}

UT_TEST(jail_rejects_relative_paths)
{
	struct jail_spec js = {.keep_fd = -1};
	UT_ASSERT(jail_add(&js, "rel/dir", JAIL_RO) == -EINVAL);
	UT_ASSERT(jail_add(&js, "/a/../b", JAIL_RO) == -EINVAL);
	UT_EQ(jail_add(&js, "/a/b", JAIL_RO), 0);
	UT_EQ(js.n_mounts, 1u);
	char out[4096];
	UT_EQ(jail_abspath("/tmp/does-not-exist-uf", out, sizeof(out)), 0);
	UT_ASSERT(strcmp(out, "/tmp/does-not-exist-uf") == 0);
	UT_ASSERT(jail_abspath("/no/such/dir/x", out, sizeof(out)) < 0);
}

/* ---- SECURITY.md lists exactly what the code allows ------------------ */

/* The first `name` of each table row between the section's markers. */
static int doc_names(const char *doc, const char *section, char names[][48], int max)
{
	char b[96], e[96];
	snprintf(b, sizeof(b), "<!-- begin %s -->", section);
	snprintf(e, sizeof(e), "<!-- end %s -->", section);
	const char *p = strstr(doc, b), *end = strstr(doc, e);
	if (!p || !end || end < p)
		UT_FAIL("SECURITY.md: no section %s", section);
	int n = 0;
	for (; (p = strstr(p, "\n| `")) && p < end; p += 4) {
		const char *s = p + 4, *q = strchr(s, '`');
		UT_ASSERT(q && q - s < 48 && n < max);
		snprintf(names[n++], 48, "%.*s", (int)(q - s), s);
	}
	return n;
}

static void same_set(const char *what, char names[][48], int n, const char *const *code, size_t nc)
{
	for (size_t i = 0; i < nc; i++) {
		bool found = false;
		for (int k = 0; k < n; k++)
			found |= strcmp(names[k], code[i]) == 0;
		if (!found)
			UT_FAIL("SECURITY.md %s: `%s` (in the code) missing", what, code[i]);
	}
	for (int k = 0; k < n; k++) {
		bool found = false;
		for (size_t i = 0; i < nc; i++)
			found |= strcmp(names[k], code[i]) == 0;
		if (!found)
			UT_FAIL("SECURITY.md %s: `%s` is not in the code", what, names[k]);
	}
}

UT_TEST(jail_security_md_matches_code)
{
	FILE *f = fopen("SECURITY.md", "r");
	if (!f) {
		printf("    (run from the repository root: no SECURITY.md here)\n");
		UT_FAIL("SECURITY.md not found");
	}
	static char doc[1 << 17];
	size_t len = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[len] = 0;
	static char names[256][48];
	static const char *code[256];
	int n = doc_names(doc, "worker-syscalls", names, 256);
	for (size_t i = 0; i < jail_n_syscalls; i++)
		code[i] = jail_syscalls[i].name;
	same_set("worker syscalls", names, n, code, jail_n_syscalls);
	n = doc_names(doc, "worker-ioctls", names, 256);
	for (size_t i = 0; i < jail_n_ioctls; i++)
		code[i] = jail_ioctls[i].name;
	same_set("worker ioctls", names, n, code, jail_n_ioctls);
	n = doc_names(doc, "runtimed-denied", names, 256);
	for (size_t i = 0; i < rt_seccomp_n_denied; i++)
		code[i] = rt_seccomp_denied[i].name;
	same_set("runtimed denied", names, n, code, rt_seccomp_n_denied);
}
