/* uf_abi.h — the host/guest ABI below virtio: I/O ports the guest agent uses
 * to talk to the VMM before any device is up.  Shared by the VMM (host) and
 * the guest agent; bump UF_ABI_VERSION on any change.
 *
 * Port 0xf4 doubles as QEMU's isa-debug-exit convention, so the same guest
 * exits a QEMU microvm peer started with
 * `-device isa-debug-exit,iobase=0xf4,iosize=1` the same way it exits ours.
 */
#ifndef UF_ABI_H
#define UF_ABI_H

#define UF_ABI_VERSION      1u

/* outb(status): the guest is done; the VMM exits with `status`.  */
#define UF_PORT_EXIT        0xf4
/* outl(UF_READY_MAGIC): the agent is up and serving.  */
#define UF_PORT_READY       0xf8
#define UF_READY_MAGIC      0x55465244u   /* "UFRD" */

#endif
