# guest/ — the guest kernel and the initramfs (see guest/README.md).
#
#   make kernel      $(GBUILD)/guest/{vmlinux,bzImage,System.map,kernel.config},
#                    symlinks into $(UNIFORK_CACHE)/kernel/<key>/; the build
#                    (~2-5 min) happens only when the key changes, a cache hit
#                    takes ~50 ms.
#   make initramfs   $(GBUILD)/guest/initramfs.cpio: the agent as /init plus
#                    its shared libraries, uncompressed newc.
#   make initramfs   also $(GBUILD)/guest/initramfs-python.cpio: the same
#                    plus the python runtime (uf-runtime-python.so, built by
#                    guest-agent/module.mk), libpython3.11 and the libraries
#                    it and the kept extension modules need (ldd closure),
#                    and Debian's stdlib staged by guest/mkpystdlib
#                    (sourceless .pyc, trimmed) at /usr/lib/python3.11.
#   make guest-boot-check
#                    boots the kernel under QEMU microvm (TCG) with a test
#                    /init (guest/test/hello-init.c), static and dynamic.
#
# Other modules extend the initramfs with
#   INITRAMFS_ARGS += --add SRC:DEST | --add-tree DIR:DEST | --exclude GLOB
#   $(GUEST_INITRAMFS): <the files those arguments name>
# (a change of INITRAMFS_ARGS alone also rebuilds the archive).

GUEST_KERNEL    := $(GBUILD)/guest/vmlinux
GUEST_BZIMAGE   := $(GBUILD)/guest/bzImage
GUEST_INITRAMFS := $(GBUILD)/guest/initramfs.cpio
GUEST_INITRAMFS_ARGSFILE := $(GBUILD)/guest/initramfs.args
GUEST_INITRAMFS_PY := $(GBUILD)/guest/initramfs-python.cpio
GUEST_PY_STDLIB := $(GBUILD)/guest/python-stdlib
GUEST_PY_STAMP  := $(GBUILD)/guest/python-stdlib.stamp
GUEST_PYTHON    := /usr/bin/python3.11
INITRAMFS_ARGS  ?=

.PHONY: kernel initramfs guest-boot-check guest-always

# Phony on purpose: the script hashes its inputs and is instant on a hit,
# so `make -n` stays cheap and a changed fragment is always noticed.
kernel:
	@guest/build-kernel.sh $(GBUILD)/guest

initramfs: $(GUEST_INITRAMFS) $(GUEST_INITRAMFS_PY)

guest-boot-check: kernel
	guest/boot-check.sh $(GBUILD)

$(GUEST_INITRAMFS): $(GBUILD)/bin/guest-agent guest/mkinitramfs $(GUEST_INITRAMFS_ARGSFILE)
	guest/mkinitramfs -o $@ --init $(GBUILD)/bin/guest-agent $(INITRAMFS_ARGS)

# The python initramfs: everything the base one has, plus the python
# runtime and its stdlib (the agent finds them at the paths of
# guest-agent/runtime.h: AGENT_PYTHON_SO, AGENT_PYTHON_STDLIB).
$(GUEST_PY_STAMP): guest/mkpystdlib
	@test -x $(GUEST_PYTHON) || { echo "$(GUEST_PYTHON) missing: apt-get install python3.11" >&2; exit 1; }
	$(GUEST_PYTHON) guest/mkpystdlib -o $(GUEST_PY_STDLIB)
	@touch $@

$(GUEST_INITRAMFS_PY): $(GBUILD)/bin/guest-agent guest/mkinitramfs $(GUEST_INITRAMFS_ARGSFILE) \
		       $(GUEST_PY_STAMP) $(AGENT_PYRT_SO)
	guest/mkinitramfs -o $@ --init $(GBUILD)/bin/guest-agent $(INITRAMFS_ARGS) \
		--add-tree $(GUEST_PY_STDLIB):/usr/lib/python3.11 \
		--add $(AGENT_PYRT_SO):/usr/lib/unifork/uf-runtime-python.so

# Rewritten only when the argument list changes, so its mtime tracks it.
$(GUEST_INITRAMFS_ARGSFILE): guest-always
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(INITRAMFS_ARGS))' | cmp -s - $@ 2>/dev/null || \
		printf '%s\n' '$(subst ','\'',$(INITRAMFS_ARGS))' >$@

guest-always:
