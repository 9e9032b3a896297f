/* runtime_pkg.h — the function package reader: unpacks a .tar.gz (the
 * bytes of Init.package, hostile) into a directory, streaming (zlib inflate
 * -> tar state machine -> files), never holding more than one 64 KiB chunk
 * and one header in memory.
 *
 * Accepted: gzip (one member, CRC checked) around a ustar / GNU / pax tar
 * with regular files, directories, symlinks and hard links; GNU long names
 * ('L', 'K') and pax `path`, `linkpath` and `size` records.
 *
 * Refused, with a one-line reason: not gzip, corrupt or truncated gzip,
 * bad header checksum, absolute paths, ".." anywhere in a path, paths over
 * 4095 bytes or components over 255, symlinks whose target is absolute or
 * contains ".." (a link may only point into its own directory's subtree,
 * so no chain of links can leave the package), hard links to anything but
 * an earlier file of the package, device nodes, FIFOs and sparse files,
 * entries that would write through a symlink, more than max_entries
 * entries, and more than max_bytes of file data (the memory budget; a
 * gzip bomb stops there).  Modes become 0755 (any x bit) or 0644; owners,
 * times and set-id bits are dropped.
 */
#ifndef UF_AGENT_RUNTIME_PKG_H
#define UF_AGENT_RUNTIME_PKG_H

#include <stddef.h>
#include <stdint.h>

struct agent_pkg_limits {
	uint64_t max_bytes;          /* file data in all, bytes */
	uint32_t max_entries;        /* files, directories and links */
};

struct agent_pkg_stats {
	uint64_t bytes;              /* file data written */
	uint32_t files, dirs, links;
};

/* Unpack the .tar.gz buf[0..len) into the directory dirfd (not owned; it
 * should be empty).  Returns 0 (stats filled, may be NULL) or a negative
 * errno with a one-line message in err: -EBADMSG for a malformed archive,
 * -EPERM for an entry the rules above refuse, -EFBIG / -E2BIG over the
 * limits, or the errno of a failed file operation.  After a failure the
 * directory may hold part of the package: empty it before reuse. */
int agent_pkg_unpack(const uint8_t *buf, size_t len, int dirfd,
		     const struct agent_pkg_limits *lim, struct agent_pkg_stats *stats,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/* Remove everything inside the directory dirfd (not the directory itself,
 * never following symlinks).  0 or -errno. */
int agent_pkg_clear(int dirfd) __attribute__((warn_unused_result));

#endif
