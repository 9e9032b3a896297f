/* format.h — the on-disk snapshot: a directory holding
 *
 *   meta.pb     one ufsnap.SnapshotFile (proto/snapshot.proto): magic,
 *               format version, the packed Snapshot metadata (CPU vendor and
 *               the source host's supported CPUID, memory size, sha256 of the
 *               kernel/initramfs/agent, every KVM and device state blob) and
 *               the sha256 of those packed bytes;
 *   memory.bin  guest RAM, sparse (see memfile.h).
 *
 * Decoding verifies, before anything is used: the protobuf parses (else
 * truncated or corrupted: -EBADMSG), the magic (-EINVAL: not a snapshot), the
 * version (-EPROTONOSUPPORT), the checksum (-EBADMSG), then every field's
 * size and range (-EBADMSG).  snap_cpu_check() refuses another CPU vendor or
 * a CPUID with features the host's KVM lacks (-ENOEXEC).  Each refusal
 * leaves one line of context in vmm_strerror().
 */
#ifndef SNAP_FORMAT_H
#define SNAP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "snapshotter/vmstate.h"

#define SNAP_MAGIC          0x4e534655u     /* "UFSN" as little-endian bytes */
#define SNAP_FORMAT_VERSION 1u              /* = ufsnap.FORMAT_VERSION_CURRENT */
#define SNAP_META_FILE      "meta.pb"
#define SNAP_MEM_FILE       "memory.bin"
#define SNAP_META_MAX       (16u << 20)     /* larger meta.pb files are refused */
#define SNAP_SHA256_LEN     32

/* sha256 of the artifacts a snapshot came from; all zeros = unknown. */
struct snap_origin {
	uint8_t kernel[SNAP_SHA256_LEN];
	uint8_t initrd[SNAP_SHA256_LEN];
	uint8_t agent[SNAP_SHA256_LEN];
};

/* Everything in meta.pb.  Large: allocate it. */
struct snap_meta {
	uint32_t format_version;            /* filled by decode */
	char cpu_vendor[13];
	uint32_t n_host_cpuid;
	struct kvm_cpuid_entry2 host_cpuid[SNAP_MAX_CPUID];
	struct snap_origin origin;
	uint64_t nonzero_pages;
	uint64_t created_unix_ns;
	char host_release[65];
	struct snap_vm_state vm;            /* memory size, vCPU, VM, devices */
};

/* Pack into a malloc'd SnapshotFile image (*out is the caller's to free). */
int snap_meta_encode(const struct snap_meta *m, uint8_t **out, size_t *len)
	__attribute__((warn_unused_result));
/* Verify and unpack a SnapshotFile image into *m. */
int snap_meta_decode(const uint8_t *buf, size_t len, struct snap_meta *m)
	__attribute__((warn_unused_result));

/* The vendor string of CPUID leaf 0 in entries (12 chars + NUL), or "" */
void snap_cpu_vendor(const struct kvm_cpuid_entry2 *e, uint32_t n, char out[13]);
/* Can a vCPU with the snapshot's CPUID run on a host whose
 * KVM_GET_SUPPORTED_CPUID is host[0..nhost)?  0, or -ENOEXEC naming the
 * vendor or the first leaf with missing feature bits. */
int snap_cpu_check(const struct snap_meta *m, const struct kvm_cpuid_entry2 *host, uint32_t nhost)
	__attribute__((warn_unused_result));

/* sha256 of a buffer / of a file's contents. */
void snap_sha256(const void *p, size_t n, uint8_t out[SNAP_SHA256_LEN]);
int snap_sha256_file(const char *path, uint8_t out[SNAP_SHA256_LEN])
	__attribute__((warn_unused_result));
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void snap_hex(const uint8_t *p, size_t n, char *out);
int snap_hash_known(const uint8_t h[SNAP_SHA256_LEN]);

#endif
