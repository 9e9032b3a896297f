/* runtime_pkg_fs.h — the filesystem side of the package reader
 * (runtime_pkg.h): path rules and creating entries under a root directory
 * without ever following a symlink on the way; agent_pkg_clear() (declared
 * in runtime_pkg.h) lives here too.  Internal to the package reader.
 */
#ifndef UF_AGENT_RUNTIME_PKG_FS_H
#define UF_AGENT_RUNTIME_PKG_FS_H

#include <stddef.h>
#include <sys/types.h>

#define PKG_PATH_MAX   4096u  /* bytes of a normalised path, with its NUL */
#define PKG_NAME_MAX   255u   /* one component */
#define PKG_DEPTH_MAX  64u    /* directories above an entry */

/* Normalise a path from the archive into out (PKG_PATH_MAX bytes): leading
 * "./" and repeated or trailing slashes and "." components are dropped.
 * Returns 0, 1 when nothing is left (the archive's "./" itself), -EPERM
 * (absolute, ".." component, nested deeper than PKG_DEPTH_MAX) or
 * -ENAMETOOLONG; *why says which. */
int pkg_norm_path(const char *in, char *out, const char **why);

/* A symlink target: relative, non-empty, no ".." component, shorter than
 * PKG_PATH_MAX.  0 or -EPERM. */
int pkg_check_link_target(const char *target);

/* Each returns 0 or -errno; -EPERM when the entry would go through or
 * replace a symlink, or replace a directory with something else. */
int pkg_make_dir(int root, const char *path);
/* Open (create or truncate) a regular file for writing; returns the fd. */
int pkg_create_file(int root, const char *path, mode_t mode);
int pkg_make_symlink(int root, const char *path, const char *target);
/* A hard link at path to the earlier regular file `target` (normalised). */
int pkg_make_hardlink(int root, const char *path, const char *target);

#endif
