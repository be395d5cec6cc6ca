# sf — top-level build.  `make` builds every binary into build/, `make test` runs
# everything (deps, build, unit, integration, end-to-end), `make run` brings a node up.

CC      ?= gcc
BUILD   := build
OBJ     := $(BUILD)/obj
GEN     := $(BUILD)/gen

PKGS    := libnats hiredis json-c libmicrohttpd libprotobuf-c libcurl libnl-3.0 \
           libnl-route-3.0 libvirt libjwt uuid libcrypto libcrypt
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

SANITIZE ?=
CFLAGS  ?= -O2 -g
# -Wno-format-truncation: paths are built from config values whose length is checked
# when the config is loaded (lib/config.c), so gcc's worst-case guesses are noise.
# clang (make fuzz) does not know every gcc warning named here.
CFLAGS  += $(if $(findstring clang,$(CC)),-Wno-unknown-warning-option)
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -Ilib -Ibus -Iapi -I$(GEN) -I$(dir $<) \
           $(PKG_CFLAGS) $(SANITIZE) -MMD -MP
LDFLAGS += $(SANITIZE)
LDLIBS  += $(PKG_LIBS) -lpthread

# Debian packages every part of sf needs (build, run, test, test image).
DEPS := build-essential pkg-config nats-server redis-server libnats-dev libhiredis-dev \
        libjson-c-dev libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler \
        libcurl4-openssl-dev libnl-3-dev libnl-route-3-dev libcmocka-dev libvirt-dev \
        libvirt-daemon-system libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils \
        dnsmasq-base xorriso genisoimage libjwt-dev uuid-dev libssl-dev libcrypt-dev \
        iproute2 iptables busybox-static syslinux syslinux-common mtools dosfstools \
        fdisk kmod cpio curl python3 procps clang libclang-rt-14-dev ovmf

PROTO_C := $(GEN)/sf.pb-c.c
PROTO_H := $(GEN)/sf.pb-c.h

LIB_SRCS     := $(wildcard lib/*.c) $(wildcard bus/*.c)
API_SRCS     := $(filter-out api/main.c,$(wildcard api/*.c))
COMPUTE_SRCS := $(filter-out workers/compute/main.c,$(wildcard workers/compute/*.c))
NETWORK_SRCS := $(filter-out workers/network/main.c,$(wildcard workers/network/*.c))
BLOB_SRCS    := $(filter-out workers/blob/main.c,$(wildcard workers/blob/*.c))

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

LIBSF      := $(BUILD)/libsf.a
LIBAPI     := $(BUILD)/libsfapi.a
LIBCOMPUTE := $(BUILD)/libsfcompute.a
LIBNETWORK := $(BUILD)/libsfnetwork.a
LIBBLOB    := $(BUILD)/libsfblob.a
MODLIBS    := $(LIBAPI) $(LIBCOMPUTE) $(LIBNETWORK) $(LIBBLOB)

BINS := $(BUILD)/sf-api $(BUILD)/sf-compute $(BUILD)/sf-network $(BUILD)/sf-blob \
        $(BUILD)/sf-ctl $(BUILD)/sf

# The sf CLI (cli/) speaks REST only: it uses libcurl + json-c, never libsf.a (only the
# pure lib/json.c, Python's json.dumps byte for byte). libcurl is loaded on first use
# (cli/curl_lazy.c), so help and completion start without it.
CLI_SRCS := $(wildcard cli/*.c) lib/json.c
CLI_LIBS  = $(shell pkg-config --libs json-c 2>/dev/null) -ldl

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/test_*.c))

.PHONY: all deps test testimage run clean bench tests-build fuzz fuzz-build fuzz-bins
# Keep test objects: they are not throwaway intermediates.
.SECONDARY:
all: $(BINS)

deps:
	@./tools/deps.sh $(DEPS)

# One protoc-c run makes both files (a grouped target: with plain `a b:` and -j, make may run
# it once per file, rewriting the header after objects were built from it; they then look
# stale and the next make, e.g. `make install`, rebuilds them).
$(PROTO_C) $(PROTO_H) &: schema/sf.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=schema --c_out=$(GEN) schema/sf.proto

# Everything that may include the generated header waits for it.
$(OBJ)/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(OBJ)/$(GEN)/sf.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(LIBSF): $(call objs,$(LIB_SRCS)) $(OBJ)/$(GEN)/sf.pb-c.o
	@rm -f $@; ar rcs $@ $^
$(LIBAPI): $(call objs,$(API_SRCS))
	@rm -f $@; ar rcs $@ $^
$(LIBCOMPUTE): $(call objs,$(COMPUTE_SRCS))
	@rm -f $@; ar rcs $@ $^
$(LIBNETWORK): $(call objs,$(NETWORK_SRCS))
	@rm -f $@; ar rcs $@ $^
$(LIBBLOB): $(call objs,$(BLOB_SRCS))
	@rm -f $@; ar rcs $@ $^

$(BUILD)/sf-api: $(OBJ)/api/main.o $(LIBAPI) $(LIBSF)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/sf-compute: $(OBJ)/workers/compute/main.o $(LIBCOMPUTE) $(LIBSF)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/sf-network: $(OBJ)/workers/network/main.o $(LIBNETWORK) $(LIBSF)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/sf-blob: $(OBJ)/workers/blob/main.o $(LIBBLOB) $(LIBSF)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/sf: $(call objs,$(CLI_SRCS))
	$(CC) $(LDFLAGS) -o $@ $^ $(CLI_LIBS)
$(BUILD)/sf-ctl: $(OBJ)/tools/sf-ctl.o $(LIBAPI) $(LIBSF)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Tests link against every module library; the linker pulls only what each needs.
$(BUILD)/tests/%: $(OBJ)/tests/unit/%.o $(MODLIBS) $(LIBSF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(MODLIBS) $(LIBSF) $(LDLIBS) -lcmocka
$(BUILD)/tests/%: $(OBJ)/tests/integration/%.o $(MODLIBS) $(LIBSF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(MODLIBS) $(LIBSF) $(LDLIBS) -lcmocka

BENCH_BINS := $(patsubst tools/bench/%.c,$(BUILD)/bench/%,$(wildcard tools/bench/*.c))
$(BUILD)/bench/%: $(OBJ)/tools/bench/%.o $(MODLIBS) $(LIBSF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(MODLIBS) $(LIBSF) $(LDLIBS)
bench: $(BINS) $(BENCH_BINS)
	@./tools/bench/run.sh

tests-build: $(BINS) $(UNIT_TESTS) $(INTEG_TESTS)

test: deps
	@$(MAKE) --no-print-directory tests-build
	@$(MAKE) --no-print-directory testimage
	@./tests/run.sh

testimage: $(BUILD)/testimage/sftest.qcow2
$(BUILD)/testimage/sftest.qcow2: tools/mk-testimage.sh
	@mkdir -p $(BUILD)/testimage
	./tools/mk-testimage.sh $(BUILD)/testimage

run: deps
	@$(MAKE) --no-print-directory all testimage
	@./tools/sf-run

# libFuzzer targets (docs/fuzzing.md): tests/fuzz/<target>/fuzz_<target>.c, built with clang
# into $(BUILD)/fuzz by a sub-make (its own objects: the whole lib and API instrumented).
FUZZ_SECONDS ?= 60
FUZZ_UPDATE  ?= 0
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_NAMES   := $(notdir $(patsubst %/,%,$(dir $(wildcard tests/fuzz/*/fuzz_*.c))))
FUZZ_BINS     = $(patsubst %,$(BUILD)/fuzz_%,$(FUZZ_NAMES))

fuzz-build:
	@$(MAKE) --no-print-directory CC=clang BUILD=$(BUILD)/fuzz SANITIZE="$(FUZZ_SAN)" fuzz-bins
fuzz-bins: $(FUZZ_BINS)
.SECONDEXPANSION:
$(BUILD)/fuzz_%: $$(OBJ)/tests/fuzz/$$*/fuzz_$$*.o $(LIBAPI) $(LIBSF)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_UPDATE=$(FUZZ_UPDATE) tests/fuzz/run.sh $(BUILD)/fuzz

clean:
	rm -rf $(BUILD)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# ---- install (PREFIX and DESTDIR as every C project: `make install DESTDIR=/tmp/pkg`) ----
# Daemons and sf-ctl (root's tools: sf-network needs CAP_NET_ADMIN, sf-ctl writes Redis
# directly) go to sbin, like libvirtd and dnsmasq; the sf client to bin. The daemons find
# the templates in ../share/sf/templates beside their own sbin/ (lib/tmpl.c), so a tree
# installed under any PREFIX works without SF_TEMPLATES. sf-creds writes the Redis and
# NATS credentials a node needs (tools/sf-creds). Nothing else of tools/ is needed at run
# time: the daemons exec only system tools (qemu-img, genisoimage, ip, iptables, dnsmasq).
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
COMPLETIONDIR ?= $(DATADIR)/bash-completion/completions
INSTALL ?= install

SBIN_INSTALL := sf-api sf-compute sf-network sf-blob sf-ctl
TEMPLATES    := $(wildcard templates/*.xml)

.PHONY: install uninstall
install: $(BINS)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DATADIR)/sf/templates \
	        $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(COMPLETIONDIR)
	$(INSTALL) -m 0755 $(BUILD)/sf $(DESTDIR)$(BINDIR)/sf
	$(INSTALL) -m 0755 $(addprefix $(BUILD)/,$(SBIN_INSTALL)) $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0755 tools/sf-creds $(DESTDIR)$(SBINDIR)/sf-creds
	$(INSTALL) -m 0644 $(TEMPLATES) $(DESTDIR)$(DATADIR)/sf/templates/
	$(INSTALL) -m 0644 docs/sf.1 $(DESTDIR)$(MANDIR)/man1/sf.1
	$(INSTALL) -m 0644 tools/sf-completion.bash $(DESTDIR)$(COMPLETIONDIR)/sf

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sf $(addprefix $(DESTDIR)$(SBINDIR)/,$(SBIN_INSTALL) sf-creds) \
	      $(addprefix $(DESTDIR)$(DATADIR)/sf/templates/,$(notdir $(TEMPLATES))) \
	      $(DESTDIR)$(MANDIR)/man1/sf.1 $(DESTDIR)$(COMPLETIONDIR)/sf
	-rmdir $(DESTDIR)$(DATADIR)/sf/templates $(DESTDIR)$(DATADIR)/sf 2>/dev/null
