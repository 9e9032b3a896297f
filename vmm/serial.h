/* serial.h — a 16550A UART (transmit side) for the guest console.
 *
 * Bytes the guest transmits go to `out_fd`, buffered per line.  The device
 * raises its ISA interrupt through the `irq` callback when the transmitter
 * empties with THRI enabled, so the guest's tty layer (which waits for THRE
 * interrupts) works, not just the polled early console.  Receive is not
 * wired: RBR reads 0 and LSR never shows data ready.
 *
 * The struct is the caller's; vmm_serial_flush() writes out what is buffered
 * (call it before release and whenever the console should be current).
 */
#ifndef VMM_SERIAL_H
#define VMM_SERIAL_H

#include <stdbool.h>
#include <stdint.h>

#define VMM_SERIAL_BUF 4096

struct vmm_serial {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thre_pending;          /* THR-empty interrupt not yet acknowledged */
	int irq_level;
	int out_fd;                 /* -1 discards output */
	uint64_t out_bytes;         /* transmitted so far */
	uint64_t out_limit;         /* 0 = unlimited; past it output is dropped */
	uint32_t buf_len;
	char buf[VMM_SERIAL_BUF];
	void (*irq)(void *opaque, int level);
	void *opaque;
};

void vmm_serial_init(struct vmm_serial *s, int out_fd,
		     void (*irq)(void *opaque, int level), void *opaque);
/* One port access at register `offset` (0..7) of the UART. */
void vmm_serial_io(struct vmm_serial *s, unsigned offset, uint8_t *data, bool is_write);
void vmm_serial_flush(struct vmm_serial *s);

#endif
