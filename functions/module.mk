# functions/ — the handler SDKs (functions/sdk/) and example functions, each
# packed as a deployable .tar.gz into $(GBUILD)/functions/<name>.tar.gz
# (guest code: plain flags, never sanitized):
#
#   hello-c        native (handler.so, built against functions/sdk/unifork.h)
#   hello-python   python (handler.py)
#   heavy-python   python, a heavy import-time init (what the snapshot saves)
#   hello-exec     exec (a C program speaking functions/sdk/EXEC.md)
#   hostile        exec, attacks its own VM (tests/faults/run.sh)
#   test-native, test-exec, test-python   fixtures of the runtime tests
#                  (functions/test/)
#
# `make functions` builds them all; `make guest` too.  Packages are
# reproducible: sorted names, owner 0, mtime 0, gzip -n.

FN_DIR     := $(GBUILD)/functions
FN_CFLAGS  := -O2 -g -std=gnu11 $(CFLAGS_WARN) -D_GNU_SOURCE -Ifunctions/sdk
FN_SDK     := functions/sdk/unifork.h functions/sdk/uf_exec.h

# $(call fn_pack,DIR,FILES): pack FILES (relative to DIR) into $@.
fn_pack = tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
	      -C $(1) -cf - $(2) | gzip -n -9 >$@.tmp && mv $@.tmp $@

FUNCTION_PKGS := $(FN_DIR)/hello-c.tar.gz $(FN_DIR)/hello-python.tar.gz \
                 $(FN_DIR)/heavy-python.tar.gz $(FN_DIR)/hello-exec.tar.gz \
                 $(FN_DIR)/test-native.tar.gz $(FN_DIR)/test-exec.tar.gz \
                 $(FN_DIR)/test-python.tar.gz $(FN_DIR)/hostile.tar.gz
GUEST_BINS += $(FUNCTION_PKGS)

.PHONY: functions
functions: $(FUNCTION_PKGS)

# native: one C file -> handler.so
$(FN_DIR)/%/handler.so: functions/%/handler.c $(FN_SDK)
	@mkdir -p $(@D)
	$(CC) $(FN_CFLAGS) -shared -fPIC -o $@ $<

# exec: one C file -> the executable `handler`
$(FN_DIR)/%/handler: functions/%/handler.c $(FN_SDK)
	@mkdir -p $(@D)
	$(CC) $(FN_CFLAGS) -o $@ $<

$(FN_DIR)/hello-c.tar.gz: $(FN_DIR)/hello-c/handler.so
	$(call fn_pack,$(FN_DIR)/hello-c,handler.so)

$(FN_DIR)/hello-exec.tar.gz: $(FN_DIR)/hello-exec/handler
	$(call fn_pack,$(FN_DIR)/hello-exec,handler)

$(FN_DIR)/hostile.tar.gz: $(FN_DIR)/hostile/handler
	$(call fn_pack,$(FN_DIR)/hostile,handler)

$(FN_DIR)/test-native.tar.gz: $(FN_DIR)/test/native/handler.so
	$(call fn_pack,$(FN_DIR)/test/native,handler.so)

$(FN_DIR)/test-exec.tar.gz: $(FN_DIR)/test/exec/handler
	$(call fn_pack,$(FN_DIR)/test/exec,handler)

$(FN_DIR)/hello-python.tar.gz: functions/hello-python/handler.py
	@mkdir -p $(@D)
	$(call fn_pack,functions/hello-python,handler.py)

$(FN_DIR)/heavy-python.tar.gz: functions/heavy-python/handler.py
	@mkdir -p $(@D)
	$(call fn_pack,functions/heavy-python,handler.py)

$(FN_DIR)/test-python.tar.gz: functions/test/python/handler.py
	@mkdir -p $(@D)
	$(call fn_pack,functions/test/python,handler.py)

# The runtime unit tests deploy these packages (tests/unit/test_runtime_*.c).
$(BUILD)/tests/unit-tests: | $(FUNCTION_PKGS)
