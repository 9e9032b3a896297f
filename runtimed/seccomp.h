/* seccomp.h — runtimed's own seccomp filter, installed once start-up is
 * done (listening socket bound, data dir open), on every thread (TSYNC).
 *
 * A deny list, not an allow list: the workers runtimed spawns inherit the
 * filter across fork and exec, and with the jail on they must still unshare
 * namespaces, mount, pivot_root and drop capabilities (forker/worker/
 * jail.h); the tight allow list is the worker's own, which is what faces
 * the guest.  What no part of unifork ever calls is denied here: ptrace,
 * kexec, modules, bpf, keyrings, perf, ...; with the jail off the jail's
 * own syscalls are denied too.  A denied call kills runtimed
 * (SCMP_ACT_KILL_PROCESS), or with UNIFORK_SECCOMP=log is reported on
 * stderr and fails with ENOSYS.  SECURITY.md lists the same table.
 */
#ifndef RT_SECCOMP_H
#define RT_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

struct rt_seccomp_entry {
	const char *name;
	bool jail_needs;        /* allowed while workers are jailed */
	const char *why;
};
extern const struct rt_seccomp_entry rt_seccomp_denied[];
extern const size_t rt_seccomp_n_denied;

/* 0 or -errno (vmm_err()). */
int rt_seccomp_install(bool jail_on) __attribute__((warn_unused_result));

#endif
