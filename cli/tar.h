/* tar.h — a POSIX ustar archive writer for function packages.
 *
 * The writer emits records through a caller-given sink (pack.c feeds them to
 * gzip).  Metadata is normalised so the same tree always gives the same
 * bytes: uid/gid 0, no user/group names, mtime 0, mode 0755 or 0644 (0755
 * when any execute bit is set; directories always 0755).  Names are relative
 * paths up to 255 bytes that ustar's prefix/name split can hold; longer ones
 * are refused (-ENAMETOOLONG), never truncated.
 *
 * Calls: cli_tar_file()/cli_tar_dir()/cli_tar_symlink() per entry, then
 * cli_tar_end() once.  Errors are 0/-errno with context in vmm_strerror().
 */
#ifndef CLI_TAR_H
#define CLI_TAR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cli_tar {
	int (*write)(void *arg, const void *p, size_t n); /* 0 or -errno */
	void *arg;
	uint64_t bytes; /* archive bytes written so far */
};

/* A regular file of `size` bytes read from `fd` (from its current offset).
 * The file must still hold `size` bytes: a file that shrank is an error. */
int cli_tar_file(struct cli_tar *t, const char *name, mode_t mode, int fd, uint64_t size)
	__attribute__((warn_unused_result));
/* A directory entry; `name` without the trailing slash. */
int cli_tar_dir(struct cli_tar *t, const char *name) __attribute__((warn_unused_result));
/* A symbolic link to `target` (at most 100 bytes). */
int cli_tar_symlink(struct cli_tar *t, const char *name, const char *target)
	__attribute__((warn_unused_result));
/* The two zero blocks that end the archive. */
int cli_tar_end(struct cli_tar *t) __attribute__((warn_unused_result));

#endif
