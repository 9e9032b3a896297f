/* jail.h — the jail uf-worker enters before it touches a template or a
 * guest (SECURITY.md): new mount, PID, network, IPC and UTS namespaces; a
 * private tmpfs root holding only bind mounts of what the worker needs, at
 * the same absolute paths, plus /dev/kvm and a procfs of its own PID
 * namespace; every other fd closed; no capabilities in any set; no new
 * privileges; then the seccomp allow list of jail_seccomp.c.
 *
 * Owns: the namespaces and mounts of the jailed process, and the one-shot
 * "supervisor" process jail_enter() leaves outside the PID namespace (it
 * waits for the jailed child and mirrors its exit status or signal to
 * runtimed; it dies with runtimed by PR_SET_PDEATHSIG, and the child dies
 * with it the same way).
 *
 * Root only: without CAP_SYS_ADMIN (a developer's unprivileged shell)
 * jail_enter() fails with -EPERM and a message saying to pass --no-jail.
 * The jailed process keeps uid 0 (it owns the template files and /dev/kvm
 * stays openable) but holds no capability at all.
 */
#ifndef UF_JAIL_H
#define UF_JAIL_H

#include <stdbool.h>
#include <stddef.h>

#define JAIL_MAX_MOUNTS 16

enum jail_bind {
	JAIL_RO,        /* read-only bind */
	JAIL_RW,        /* read-write bind */
	JAIL_RW_NEW,    /* rw dir whose existing regular files are each bound
			 * read-only over themselves: new files can be made
			 * (the working set), the snapshot files cannot be
			 * changed, renamed or removed */
};

struct jail_mount {
	const char *path;       /* absolute, no "..": bound at the same path */
	enum jail_bind mode;
};

enum jail_seccomp {
	JAIL_SECCOMP_KILL,      /* a syscall off the list kills the process */
	JAIL_SECCOMP_LOG,       /* logs it on stderr and fails it with ENOSYS
				 * (UNIFORK_SECCOMP=log: for finding what a
				 * change needs, never for production) */
	JAIL_SECCOMP_NONE,      /* tests only: the jail without the filter */
};

struct jail_spec {
	struct jail_mount mounts[JAIL_MAX_MOUNTS];
	size_t n_mounts;
	bool kvm;               /* bind /dev/kvm */
	int keep_fd;            /* stays open (the socket to runtimed), or -1 */
	enum jail_seccomp seccomp;
};

/* Add a mount; -E2BIG when full, -EINVAL for a relative path. */
int jail_add(struct jail_spec *js, const char *path, enum jail_bind mode)
	__attribute__((warn_unused_result));

/* Enter the jail.  Returns 0 in the jailed child (PID 1 of its namespace,
 * every step above done); the calling process itself never returns: it
 * becomes the supervisor and exits as the child does.  -errno (vmm_err())
 * if the jail could not be set up before the fork; a failure after it ends
 * the child with status 125.  Call it single-threaded. */
int jail_enter(const struct jail_spec *js) __attribute__((warn_unused_result));

/* `path` made absolute (realpath of its directory + its last component,
 * which need not exist).  0 or -errno (vmm_err()). */
int jail_abspath(const char *path, char *out, size_t n) __attribute__((warn_unused_result));

/* The jail requested by --jail/--no-jail or UNIFORK_JAIL (on|off, default
 * on); main.c sets it.  jail_seccomp_mode(): UNIFORK_SECCOMP=log or kill. */
extern bool jail_wanted;
enum jail_seccomp jail_seccomp_mode(void);

/* Install the worker's seccomp filter on the calling thread's process
 * (jail_seccomp.c).  0 or -errno (vmm_err()). */
int jail_seccomp_install(enum jail_seccomp mode) __attribute__((warn_unused_result));

/* UNIFORK_SECCOMP=log's SIGSYS handler (shared with runtimed/seccomp.c):
 * prints the refused syscall's number on stderr, fails it with ENOSYS. */
int jail_sigsys_log(void) __attribute__((warn_unused_result));

/* The worker's allow lists, for SECURITY.md and its test. */
struct jail_sc_entry {
	const char *name;
	const char *why;
};
struct jail_ioctl_entry {
	unsigned long req;
	const char *name;
	const char *why;
};
extern const struct jail_sc_entry jail_syscalls[];
extern const size_t jail_n_syscalls;
extern const struct jail_ioctl_entry jail_ioctls[];
extern const size_t jail_n_ioctls;

#endif
