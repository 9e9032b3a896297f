# guest/ — the guest kernel and the initramfs (see guest/README.md).
#
#   make kernel      $(GBUILD)/guest/{vmlinux,bzImage,System.map,kernel.config},
#                    symlinks into $(UNIFORK_CACHE)/kernel/<key>/; the build
#                    (~2-5 min) happens only when the key changes, a cache hit
#                    takes ~50 ms.
#   make initramfs   $(GBUILD)/guest/initramfs.cpio: the agent as /init plus
#                    its shared libraries, uncompressed newc.
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
INITRAMFS_ARGS  ?=

.PHONY: kernel initramfs guest-boot-check guest-always

# Phony on purpose: the script hashes its inputs and is instant on a hit,
# so `make -n` stays cheap and a changed fragment is always noticed.
kernel:
	@guest/build-kernel.sh $(GBUILD)/guest

initramfs: $(GUEST_INITRAMFS)

guest-boot-check: kernel
	guest/boot-check.sh $(GBUILD)

$(GUEST_INITRAMFS): $(GBUILD)/bin/guest-agent guest/mkinitramfs $(GUEST_INITRAMFS_ARGSFILE)
	guest/mkinitramfs -o $@ --init $(GBUILD)/bin/guest-agent $(INITRAMFS_ARGS)

# Rewritten only when the argument list changes, so its mtime tracks it.
$(GUEST_INITRAMFS_ARGSFILE): guest-always
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(INITRAMFS_ARGS))' | cmp -s - $@ 2>/dev/null || \
		printf '%s\n' '$(subst ','\'',$(INITRAMFS_ARGS))' >$@

guest-always:
