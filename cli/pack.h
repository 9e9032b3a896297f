/* pack.h — turns what `unifork deploy` is given into the package bytes
 * (a .tar.gz) that go base64-encoded into the deploy body.
 *
 * A directory is packed in-process: a deterministic ustar archive (entries
 * sorted bytewise, metadata normalised, see tar.h) gzip-compressed with
 * zlib.  Regular files, directories and symlinks are packed; symlinks must
 * follow the guest agent's rule (relative, no ".." component: a link points
 * into its own directory's subtree).  Anything else (sockets, fifos,
 * devices, other symlinks) is refused with the path named, so the mistake
 * shows on the author's machine rather than as a 422 from the guest.  A regular file
 * that starts with the gzip magic is taken as a prebuilt package, as is.
 *
 * Errors: 0 or -errno with context in vmm_strerror().  `out` is appended to;
 * on failure its contents are unspecified (the caller frees it).
 */
#ifndef CLI_PACK_H
#define CLI_PACK_H

#include <stdint.h>

#include "cli/buf.h"

#define CLI_PACK_MAX_INPUT   (1ull << 30)  /* bytes of file data packed */
#define CLI_PACK_MAX_ENTRIES 100000
#define CLI_PACK_MAX_DEPTH   64

struct cli_pack_stats {
	unsigned files, dirs, symlinks;
	uint64_t bytes_in;  /* file data */
	uint64_t bytes_out; /* .tar.gz */
	int prebuilt;       /* 1: the path was a .tar.gz taken as is */
};

int cli_pack_path(const char *path, struct cli_buf *out, struct cli_pack_stats *st)
	__attribute__((warn_unused_result));

#endif
