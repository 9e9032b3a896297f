/* jail.c — namespaces, the tmpfs root, capabilities and the supervisor
 * (contract in jail.h; the seccomp filter is jail_seccomp.c). */
#include "forker/worker/jail.h"
#include "vmm/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where the new root is assembled (in the private mount namespace only;
 * sources are reached through O_PATH fds, so hiding /tmp does not matter). */
#define STAGE "/tmp"
#define JAIL_FAIL_STATUS 125

bool jail_wanted = true;

enum jail_seccomp jail_seccomp_mode(void)
{
	const char *v = getenv("UNIFORK_SECCOMP");
	return v && strcmp(v, "log") == 0 ? JAIL_SECCOMP_LOG : JAIL_SECCOMP_KILL;
}

int jail_add(struct jail_spec *js, const char *path, enum jail_bind mode)
{
	if (!path || path[0] != '/' || strstr(path, "/../") || strlen(path) >= PATH_MAX - 64)
		return vmm_err(-EINVAL, "jail: %s: not a clean absolute path", path ? path : "(null)");
	if (js->n_mounts == JAIL_MAX_MOUNTS)
		return vmm_err(-E2BIG, "jail: more than %d mounts", JAIL_MAX_MOUNTS);
	js->mounts[js->n_mounts++] = (struct jail_mount){path, mode};
	return 0;
}

int jail_abspath(const char *path, char *out, size_t n)
{
	char buf[PATH_MAX], dir[PATH_MAX];
	if (realpath(path, buf)) {
		if (strlen(buf) >= n)
			return vmm_err(-ENAMETOOLONG, "jail: %s: path too long", path);
		snprintf(out, n, "%s", buf);
		return 0;
	}
	/* Not there yet (a build's output dir): its directory must be. */
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return vmm_err(-ENAMETOOLONG, "jail: %s: path too long", path);
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : dir;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return vmm_err(-EINVAL, "jail: %s: no such path", path);
	if (slash == dir)
		snprintf(buf, sizeof(buf), "/");
	else if (!realpath(slash ? (*slash = 0, dir) : ".", buf))
		return vmm_errno(-errno, "jail: %s", path);
	if (snprintf(out, n, "%s/%s", strcmp(buf, "/") ? buf : "", base) >= (int)n)
		return vmm_err(-ENAMETOOLONG, "jail: %s: path too long", path);
	return 0;
}

/* ---- the jailed child: every failure is reported and ends it --------- */

static void die(const char *what, const char *path)
{
	fprintf(stderr, "uf-worker: jail: %s%s%s: %s\n", what, path ? " " : "", path ? path : "",
		strerror(errno));
	_exit(JAIL_FAIL_STATUS);
}

/* mkdir -p of the directories of `p` (all of it with `whole`). */
static void mkdirs(const char *p, bool whole)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", p);
	for (char *s = buf + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		if (!*s && !whole)
			return;
		char c = *s;
		*s = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			die("mkdir", buf);
		if (!c)
			return;
		*s = c;
	}
}

static void bind_at(int srcfd, const char *target, bool dir, unsigned long flags)
{
	char src[64];
	snprintf(src, sizeof(src), "/proc/self/fd/%d", srcfd);
	mkdirs(target, dir);
	if (!dir) {
		int f = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (f < 0)
			die("create", target);
		close(f);
	}
	if (mount(src, target, NULL, MS_BIND, NULL) < 0)
		die("bind", target);
	if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0)
		die("remount", target);
}

/* Each existing regular file of the rw dir `target` read-only over itself
 * (the working set is the one file the worker may replace). */
static void lock_files(int dfd, const char *target)
{
	DIR *d = fdopendir(dfd);
	if (!d)
		die("opendir", target);
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		bool reg = e->d_type == DT_REG;
		if (e->d_type == DT_UNKNOWN && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			reg = S_ISREG(st.st_mode);
		if (!reg || strncmp(e->d_name, "workingset", 10) == 0)
			continue;
		char p[PATH_MAX];
		if (snprintf(p, sizeof(p), "%s/%s", target, e->d_name) >= (int)sizeof(p))
			continue;
		if (mount(p, p, NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) < 0)
			die("lock", p);
	}
	closedir(d);
}

static int by_length(const void *a, const void *b)
{
	size_t la = strlen(((const struct jail_mount *)a)->path);
	size_t lb = strlen(((const struct jail_mount *)b)->path);
	return la < lb ? -1 : la > lb;
}

static void build_root(const struct jail_spec *js)
{
	struct jail_mount m[JAIL_MAX_MOUNTS];
	int fd[JAIL_MAX_MOUNTS], dirfd[JAIL_MAX_MOUNTS];
	bool isdir[JAIL_MAX_MOUNTS];
	memcpy(m, js->mounts, js->n_mounts * sizeof(m[0]));
	qsort(m, js->n_mounts, sizeof(m[0]), by_length);
	/* Sources first: the tmpfs below hides STAGE. */
	for (size_t i = 0; i < js->n_mounts; i++) {
		struct stat st;
		fd[i] = open(m[i].path, O_PATH | O_CLOEXEC);
		if (fd[i] < 0 || fstat(fd[i], &st) < 0)
			die("open", m[i].path);
		isdir[i] = S_ISDIR(st.st_mode);
		dirfd[i] = -1;
		if (m[i].mode == JAIL_RW_NEW &&
		    (dirfd[i] = open(m[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			die("open", m[i].path);
	}
	int kvm = js->kvm ? open("/dev/kvm", O_PATH | O_CLOEXEC) : -1;
	if (js->kvm && kvm < 0)
		die("open", "/dev/kvm");
	if (mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") <
	    0)
		die("tmpfs on", STAGE);
	for (size_t i = 0; i < js->n_mounts; i++) {
		char t[PATH_MAX];
		snprintf(t, sizeof(t), STAGE "%s", m[i].path);
		unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC;
		bind_at(fd[i], t, isdir[i], fl | (m[i].mode == JAIL_RO ? MS_RDONLY : 0));
		close(fd[i]);
		if (dirfd[i] >= 0)
			lock_files(dirfd[i], t);
	}
	if (kvm >= 0) {
		bind_at(kvm, STAGE "/dev/kvm", false, MS_NOSUID | MS_NOEXEC);
		close(kvm);
	}
	/* A procfs of the new PID namespace: the worker reads its own
	 * /proc/self/{pagemap,smaps}; it sees no other process. */
	mkdirs(STAGE "/proc", true);
	if (mount("proc", STAGE "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		die("mount", "/proc");
	if (chdir(STAGE) < 0)
		die("chdir", STAGE);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root", STAGE);
	/* The old root sits on top of the new one: detach it. */
	if (umount2(".", MNT_DETACH) < 0)
		die("umount", "the old root");
	if (chdir("/") < 0)
		die("chdir", "/");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) <
	    0)
		die("remount read-only", "/");
}

static void close_fds(int keep)
{
	if (keep >= 3) {
		if (keep > 3 && syscall(SYS_close_range, 3, keep - 1, 0) < 0)
			die("close_range", NULL);
		if (syscall(SYS_close_range, keep + 1, ~0u, 0) < 0)
			die("close_range", NULL);
	} else if (syscall(SYS_close_range, 3, ~0u, 0) < 0) {
		die("close_range", NULL);
	}
}

static void drop_caps(void)
{
	/* uid 0 without capabilities: no way back to them (no setuid fixups,
	 * no root-gets-all-caps on exec), then every set emptied. */
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
			  SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED) < 0)
		die("securebits", NULL);
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			die("drop bounding capability", NULL);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		die("clear ambient capabilities", NULL);
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset", NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("no_new_privs", NULL);
}

static void jail_child(const struct jail_spec *js)
{
	if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		die("unshare", NULL);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("make mounts private", NULL);
	if (sethostname("uf-jail", 7) < 0)
		die("sethostname", NULL);
	build_root(js);
	close_fds(js->keep_fd);
	drop_caps();
	if (js->seccomp != JAIL_SECCOMP_NONE && jail_seccomp_install(js->seccomp)) {
		fprintf(stderr, "uf-worker: jail: %s\n", vmm_strerror());
		_exit(JAIL_FAIL_STATUS);
	}
}

/* ---- the supervisor: outside the PID namespace, mirrors the child ----- */

static volatile sig_atomic_t sup_signal;
static pid_t sup_child;

static void sup_forward(int sig)
{
	/* The child is its namespace's init: it ignores signals it has no
	 * handler for, so a stop request ends it hard. */
	sup_signal = sig;
	kill(sup_child, SIGKILL);
}

static void die_like(int sig)
{
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	signal(sig, SIG_DFL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	raise(sig);
	_exit(128 + sig);
}

static void __attribute__((noreturn)) supervise(pid_t child, int alive)
{
	sup_child = child;
	struct sigaction sa = {.sa_handler = sup_forward};
	sigemptyset(&sa.sa_mask);
	int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &sa, NULL);
	/* Nothing here needs the socket or anything else: the child has them.
	 * `alive` stays open (as fd 3) until this process is gone. */
	if (dup2(alive, 3) < 0)
		_exit(JAIL_FAIL_STATUS);
	syscall(SYS_close_range, 4, ~0u, 0);
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			_exit(JAIL_FAIL_STATUS);
	if (sup_signal)
		die_like(sup_signal);
	if (WIFSIGNALED(st))
		die_like(WTERMSIG(st));
	_exit(WEXITSTATUS(st));
}

int jail_enter(const struct jail_spec *js)
{
	if (geteuid() != 0)
		return vmm_err(-EPERM, "jail: needs root (namespaces, mounts); run uf-worker with "
				       "--no-jail (runtimed: --jail off) on an unprivileged machine");
	for (size_t i = 0; i < js->n_mounts; i++)
		if (!js->mounts[i].path || js->mounts[i].path[0] != '/')
			return vmm_err(-EINVAL, "jail: mount %zu: not an absolute path", i);
	if (unshare(CLONE_NEWPID) < 0)
		return vmm_errno(-errno, "jail: unshare(CLONE_NEWPID)");
	int alive[2];
	if (pipe2(alive, O_CLOEXEC) < 0)
		return vmm_errno(-errno, "jail: pipe");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(alive[0]);
		close(alive[1]);
		return vmm_errno(-e, "jail: fork");
	}
	if (pid > 0)
		supervise(pid, alive[1]);
	/* Dies with the supervisor, which dies with runtimed; the supervisor
	 * may have gone before the death signal was armed: then the pipe it
	 * held hangs up (getppid() is 0 across the PID namespace). */
	close(alive[1]);
	struct pollfd p = {.fd = alive[0], .events = POLLIN};
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || poll(&p, 1, 0) != 0)
		_exit(JAIL_FAIL_STATUS);
	close(alive[0]);
	jail_child(js);
	return 0;
}
