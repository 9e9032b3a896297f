/* serial.c — 16550A transmit path with THRE interrupts. */
#include "vmm/serial.h"

#include <errno.h>
#include <unistd.h>

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI     0x01
#define IER_THRI    0x02
#define IIR_NO_INT  0x01
#define IIR_THRI    0x02
#define IIR_FIFO    0xc0
#define FCR_ENABLE  0x01
#define LCR_DLAB    0x80
#define MCR_DTR     0x01
#define MCR_RTS     0x02
#define MCR_OUT1    0x04
#define MCR_OUT2    0x08
#define MCR_LOOP    0x10
#define LSR_THRE    0x20
#define LSR_TEMT    0x40
#define MSR_CTS     0x10
#define MSR_DSR     0x20
#define MSR_RI      0x40
#define MSR_DCD     0x80

void vmm_serial_init(struct vmm_serial *s, int out_fd,
		     void (*irq)(void *opaque, int level), void *opaque)
{
	*s = (struct vmm_serial){.out_fd = out_fd, .irq = irq, .opaque = opaque,
				 .mcr = MCR_OUT2, .dll = 12 /* 9600 baud */};
}

void vmm_serial_flush(struct vmm_serial *s)
{
	uint32_t off = 0;
	while (s->out_fd >= 0 && off < s->buf_len) {
		ssize_t n = write(s->out_fd, s->buf + off, s->buf_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;      /* console gone: drop, the guest must not stall */
		off += (uint32_t)n;
	}
	s->buf_len = 0;
}

static void update_irq(struct vmm_serial *s)
{
	int level = (s->ier & IER_THRI) && s->thre_pending;
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->irq)
			s->irq(s->opaque, level);
	}
}

static void transmit(struct vmm_serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP)
		return;     /* loopback: nothing leaves the UART */
	s->out_bytes++;
	if (s->out_limit && s->out_bytes > s->out_limit)
		return;
	s->buf[s->buf_len++] = (char)c;
	if (c == '\n' || s->buf_len == sizeof(s->buf))
		vmm_serial_flush(s);
}

static uint8_t modem_status(const struct vmm_serial *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* Loopback wiring, which the kernel's autoconfig checks. */
	uint8_t m = 0;
	if (s->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

void vmm_serial_io(struct vmm_serial *s, unsigned offset, uint8_t *data, bool is_write)
{
	bool dlab = s->lcr & LCR_DLAB;

	if (is_write) {
		uint8_t v = *data;
		switch (offset) {
		case RBR_THR:
			if (dlab) {
				s->dll = v;
			} else {
				transmit(s, v);
				s->thre_pending = true;   /* sent at once: THR empty again */
			}
			break;
		case IER:
			if (dlab) {
				s->dlm = v;
			} else {
				if (!(s->ier & IER_THRI) && (v & IER_THRI))
					s->thre_pending = true;
				s->ier = v & 0x0f;
			}
			break;
		case IIR_FCR:
			s->fcr = v;
			break;
		case LCR:
			s->lcr = v;
			break;
		case MCR:
			s->mcr = v & 0x1f;
			break;
		case SCR:
			s->scr = v;
			break;
		default:    /* LSR, MSR: read-only */
			break;
		}
		update_irq(s);
		return;
	}

	switch (offset) {
	case RBR_THR:
		*data = dlab ? s->dll : 0;
		break;
	case IER:
		*data = dlab ? s->dlm : s->ier;
		break;
	case IIR_FCR: {
		uint8_t iir = IIR_NO_INT;
		if ((s->ier & IER_THRI) && s->thre_pending) {
			iir = IIR_THRI;
			s->thre_pending = false;  /* reading IIR acknowledges THRE */
		}
		*data = iir | ((s->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
		break;
	}
	case LCR:
		*data = s->lcr;
		break;
	case MCR:
		*data = s->mcr;
		break;
	case LSR:
		*data = LSR_THRE | LSR_TEMT;
		break;
	case MSR:
		*data = modem_status(s);
		break;
	case SCR:
		*data = s->scr;
		break;
	default:
		*data = 0xff;
	}
	update_irq(s);
}
