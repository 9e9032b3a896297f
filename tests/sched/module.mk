# tests/sched/ — the scheduler's guest suite (tests/sched/run.sh) and its
# CPU-bound native function, packed like tests/e2e's (runtimed/module.mk).
SCHED_PKG := $(GBUILD)/sched/sched-spin.tar.gz
GUEST_BINS += $(SCHED_PKG)
$(GBUILD)/sched/fn/handler.so: tests/sched/fn/handler.c functions/sdk/unifork.h
	@mkdir -p $(@D)
	$(CC) -O2 -g -std=gnu11 $(CFLAGS_WARN) -D_GNU_SOURCE -Ifunctions/sdk -shared -fPIC -o $@ $<
$(SCHED_PKG): $(GBUILD)/sched/fn/handler.so
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
	    -C $(<D) -cf - handler.so | gzip -n -9 >$@.tmp && mv $@.tmp $@
