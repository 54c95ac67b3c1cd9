# libvrev — plain GNU make build.
#
#   make [all]            libvrev.a, libvrev.so.0 and the vrev binary (in $(BUILD)/)
#   make check            build and run every test (cmocka units, fuzz corpus replays, CLI tests)
#                         and the rules of docs/layers.md (make layers, exports, headers)
#   make symbols          rewrite lib/libvrev.symbols from the library (an intended API change)
#   make asan             the same under ASan+UBSan (clang), in build/asan (ASAN_BUILD=...)
#   make fuzz             libFuzzer targets (clang) in build/fuzz (FUZZ_BUILD=...)
#   make install          PREFIX=/usr/local DESTDIR= ; make uninstall (also the systemd units,
#                         man pages and bash completion: SYSTEMDUNITDIR, MANDIR, BASHCOMPDIR)
#   make clean
#
# Options: CRYPTO=auto|openssl|mbedtls (auto prefers OpenSSL), BUILD=dir, CC=..., V=1

VERSION_H := include/vrev/version.h
VERSION_MAJOR := $(shell sed -n 's/^\#define VREV_VERSION_MAJOR \([0-9]*\).*/\1/p' $(VERSION_H))
VERSION_MINOR := $(shell sed -n 's/^\#define VREV_VERSION_MINOR \([0-9]*\).*/\1/p' $(VERSION_H))
VERSION_PATCH := $(shell sed -n 's/^\#define VREV_VERSION_PATCH \([0-9]*\).*/\1/p' $(VERSION_H))
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

PREFIX ?= /usr/local
DESTDIR ?=
INCLUDEDIR ?= $(PREFIX)/include
LIBDIR ?= $(PREFIX)/lib
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

BUILD ?= build
CC ?= cc
PKG_CONFIG ?= pkg-config
PYTHON ?= /usr/bin/python3

# --- crypto backend (DESIGN.md §7) -------------------------------------------------------------
CRYPTO ?= auto
ifeq ($(CRYPTO),auto)
  ifeq ($(shell $(PKG_CONFIG) --exists libcrypto libssl && echo yes),yes)
    override CRYPTO := openssl
  else
    override CRYPTO := mbedtls
  endif
endif
ifeq ($(CRYPTO),openssl)
  CRYPTO_CFLAGS := -DVREV_CRYPTO_OPENSSL $(shell $(PKG_CONFIG) --cflags libcrypto libssl 2>/dev/null)
  CRYPTO_LIBS := $(shell $(PKG_CONFIG) --libs libssl libcrypto 2>/dev/null || echo -lssl -lcrypto)
  PC_REQUIRES_PRIVATE := libssl libcrypto
  PC_LIBS_PRIVATE :=
else ifeq ($(CRYPTO),mbedtls)
  CRYPTO_CFLAGS := -DVREV_CRYPTO_MBEDTLS
  CRYPTO_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto
  PC_REQUIRES_PRIVATE :=
  PC_LIBS_PRIVATE := -lmbedtls -lmbedx509 -lmbedcrypto
else
  $(error CRYPTO must be auto, openssl or mbedtls (got '$(CRYPTO)'))
endif

EVENT_CFLAGS := $(shell $(PKG_CONFIG) --cflags libevent 2>/dev/null)
EVENT_LIBS := $(shell $(PKG_CONFIG) --libs libevent 2>/dev/null || echo -levent)
JANSSON_CFLAGS := $(shell $(PKG_CONFIG) --cflags jansson 2>/dev/null)
JANSSON_LIBS := $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null || echo -ljansson)
# The WebSocket and HTTP/2 carriers' framing (lib/codec/ws.c, h2.c). Debian's libwslay-dev
# ships no .pc file, hence the fallback.
WSLAY_CFLAGS := $(shell $(PKG_CONFIG) --cflags libwslay 2>/dev/null)
WSLAY_LIBS := $(shell $(PKG_CONFIG) --libs libwslay 2>/dev/null || echo -lwslay)
NGHTTP2_CFLAGS := $(shell $(PKG_CONFIG) --cflags libnghttp2 2>/dev/null)
NGHTTP2_LIBS := $(shell $(PKG_CONFIG) --libs libnghttp2 2>/dev/null || echo -lnghttp2)
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

# --- flags -------------------------------------------------------------------------------------
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wwrite-strings -Wformat=2 -Werror
OPT ?= -O2 -g
SAN_FLAGS :=
# The shared library must resolve everything itself, except under a sanitizer, whose runtime
# clang links into executables only.
NO_UNDEFINED := -Wl,--no-undefined
ifeq ($(SANITIZE),1)
  NO_UNDEFINED :=
  SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  OPT := -O1 -g
endif
CPPFLAGS_ALL := -Iinclude -Ilib -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(CRYPTO_CFLAGS) \
	$(EVENT_CFLAGS) $(JANSSON_CFLAGS) $(WSLAY_CFLAGS) $(NGHTTP2_CFLAGS) $(CPPFLAGS)
CFLAGS_ALL := -std=c11 $(WARN) $(OPT) -fPIC -fvisibility=hidden $(SAN_FLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SAN_FLAGS) $(LDFLAGS)
# -pthread: vrev_ctx_post's mutex (lib/net/post.c); part of the C library on glibc 2.34+ and musl
LIBS_ALL := $(CRYPTO_LIBS) $(EVENT_LIBS) $(JANSSON_LIBS) $(WSLAY_LIBS) $(NGHTTP2_LIBS) -pthread

# The Python example loads libvrev.so with ctypes: not possible for a sanitizer build.
PYTEST_DIRS := tests/cli tests/e2e
ifneq ($(SANITIZE),1)
  PYTEST_DIRS += examples/python
endif

ifneq ($(V),1)
  Q := @
endif

# --- sources -----------------------------------------------------------------------------------
LIB_SRCS := $(sort $(wildcard lib/*/*.c))
CLI_SRCS := $(sort $(wildcard cli/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_HELPERS := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj-test/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELPER_OBJS := $(UNIT_HELPERS:%.c=$(BUILD)/obj/%.o)
REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/tests/replay_%)
ASAN_BUILD ?= build/asan
FUZZ_BUILD ?= build/fuzz
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

STATIC_LIB := $(BUILD)/libvrev.a
TEST_LIB := $(BUILD)/libvrev-testing.a
SONAME := libvrev.so.$(VERSION_MAJOR)
SHARED_LIB := $(BUILD)/libvrev.so.$(VERSION)
VREV_BIN := $(BUILD)/vrev

.SECONDARY:
.PHONY: demo all lib cli examples deps check check-run unit replay clitest exports symbols headers \
	layers format format-fix run-examples asan fuzz install \
	uninstall clean bench bench-micro units manlint FORCE

all: lib cli

lib: $(STATIC_LIB) $(BUILD)/$(SONAME) $(BUILD)/libvrev.so

cli: $(VREV_BIN)

# Rebuild everything when the configuration changes within one BUILD directory.
CONFIG_ID := CRYPTO=$(CRYPTO) SANITIZE=$(SANITIZE) CC=$(CC) OPT=$(OPT)
$(BUILD)/config.stamp: FORCE
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(CONFIG_ID)" ]; then echo "$(CONFIG_ID)" > $@; fi
FORCE:

$(BUILD)/obj/%.o: %.c $(BUILD)/config.stamp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(BUILD)/obj/tests/%.o: tests/%.c $(BUILD)/config.stamp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CMOCKA_CFLAGS) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

# The unit tests' build of lib/: the same sources again with -DVREV_TESTING, which compiles in
# the test hooks (vrev__tls_set_chaos and its state) that the shipped libvrev.a/.so never carry
# (`make exports` checks). The unit tests, and only they, link it; it doubles lib/'s compile
# time for them (about 20 s of CPU at -O2).
$(BUILD)/obj-test/%.o: %.c $(BUILD)/config.stamp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (VREV_TESTING)")
	$(Q)$(CC) $(CPPFLAGS_ALL) -DVREV_TESTING $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c $(BUILD)/config.stamp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_ALL) -DVREV_TESTING $(CMOCKA_CFLAGS) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(STATIC_LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(TEST_LIB): $(TEST_LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS) lib/libvrev.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libvrev.map \
		-Wl,-z,relro,-z,now $(NO_UNDEFINED) $(LDFLAGS_ALL) -o $@ $(LIB_OBJS) $(LIBS_ALL)

$(BUILD)/$(SONAME): $(SHARED_LIB)
	$(Q)ln -sf $(notdir $<) $@

$(BUILD)/libvrev.so: $(BUILD)/$(SONAME)
	$(Q)ln -sf $(notdir $<) $@

$(VREV_BIN): $(CLI_OBJS) $(STATIC_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJS) $(STATIC_LIB) $(LIBS_ALL)

# --- tests -------------------------------------------------------------------------------------
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_HELPER_OBJS) $(TEST_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $< $(UNIT_HELPER_OBJS) $(TEST_LIB) $(LIBS_ALL) $(CMOCKA_LIBS)

$(BUILD)/tests/replay_%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay_main.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

# The carrier codecs over a plain socket, for tests/e2e/test_carrier_codecs.py (V2Ray 4.34 on
# the other side) until lib/net has their glue.
$(BUILD)/tests/carrier_peer: tests/e2e/carrier_peer.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(STATIC_LIB) $(LIBS_ALL)

# The carrier layers of lib/net on libevent, for tests/e2e/test_carrier_layers.py.
$(BUILD)/tests/layer_peer: tests/e2e/layer_peer.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(STATIC_LIB) $(LIBS_ALL)

# The main job: a web service, a portal and a bridge on loopback, a page through the tunnel.
demo:
	@bash scripts/demo.sh

# Install what is missing (apt-get; a no-op when everything is there). VREV_NO_DEPS=1 skips it.
deps:
ifneq ($(VREV_NO_DEPS),1)
	@bash scripts/install-deps.sh
endif

# Build in parallel, then run the suites one after another so their reports stay readable.
check: deps
	@$(MAKE) --no-print-directory check-run

check-run: $(UNIT_BINS) $(REPLAY_BINS) $(VREV_BIN) $(EXAMPLE_BINS) $(BUILD)/$(SONAME) \
		$(BUILD)/libvrev.so $(BUILD)/tests/carrier_peer $(BUILD)/tests/layer_peer
	@$(MAKE) --no-print-directory -j1 layers format units manlint unit replay clitest exports headers run-examples
	@echo "check: all suites passed ($(CRYPTO) backend)"

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; \
		VREV_VECTORS=tests/vectors $$t; done

replay: $(REPLAY_BINS)
	@set -e; for t in $(REPLAY_BINS); do name=$${t##*/replay_}; \
		$$t tests/fuzz/corpus/$$name; done

clitest: $(VREV_BIN)
	VREV_BIN=$(VREV_BIN) VREV_BUILD=$(BUILD) CRYPTO=$(CRYPTO) VREV_CC="$(CC)" \
		VREV_SAN_FLAGS="$(SAN_FLAGS)" VREV_EXAMPLES=$(BUILD)/examples \
		VREV_LIB=$(BUILD)/$(SONAME) $(PYTHON) -m pytest -q $(PYTEST_DIRS)

# The shared library exports the public API only, each name under the version node VREV_1.0
# (lib/libvrev.map), and exactly the names committed in lib/libvrev.symbols: an added or removed
# export fails here by name. `make symbols` rewrites the list when the change is intended.
# Neither shipped library carries a test hook (-DVREV_TESTING code: no symbol named *chaos* or
# *_test*).
SYMBOLS := lib/libvrev.symbols
exports: $(BUILD)/$(SONAME) $(STATIC_LIB)
	@$(PYTHON) scripts/check-exports.py $(BUILD)/$(SONAME) $(SYMBOLS)
	@bad=$$(nm -A --defined-only $(STATIC_LIB) $(SHARED_LIB) | awk '{print $$NF}' | \
		grep -iE 'chaos|_test' | sort -u); if [ -n "$$bad" ]; then echo "$$bad"; \
		echo "exports: test hooks in the shipped library (guard them with #ifdef VREV_TESTING)"; \
		exit 1; fi; echo "exports: no test hook in $(STATIC_LIB) or $(SHARED_LIB)"

symbols: $(BUILD)/$(SONAME)
	@$(PYTHON) scripts/check-exports.py --write $(BUILD)/$(SONAME) $(SYMBOLS)

# Public headers compile alone, without libevent on the include path: as C99 with -pedantic
# (portable declarations), as C89 and C++98 with -pedantic (what an older compiler or a strict
# embedder's build accepts: no comma after the last enumerator, no // comment, no declaration
# after a statement; <stdint.h> is C99's but glibc's and musl's work in C89 mode, and a
# pre-C99 platform without it is not one libvrev targets) and as C++11. Then one C++ file
# takes the address of every symbol in lib/libvrev.symbols through include/vrev.h alone and
# links against the shared library: each export is declared in the public headers, with C
# linkage (extern "C").
HEADERS_CXX_FLAGS := -std=c++11 -pedantic -Wall -Wextra -Wshadow -Werror
HEADERS_STDS := c:c99 c:c89 c++:c++98 c++:c++11
headers: $(BUILD)/$(SONAME) $(SYMBOLS)
	@set -e; for h in include/vrev.h include/vrev/*.h; do for s in $(HEADERS_STDS); do \
		lang=$${s%%:*}; std=$${s#*:}; \
		if [ $$lang = c ]; then cc="$(CC) $(WARN)"; else cc="$(CXX) $(HEADERS_CXX_FLAGS)"; fi; \
		echo "#include \"$$h\"" | $$cc -std=$$std -pedantic -Iinclude -fsyntax-only -x$$lang - \
			|| { echo "headers: $$h fails as -std=$$std -pedantic"; exit 1; }; done; done
	@mkdir -p $(BUILD)/headers
	@{ echo '#include "vrev.h"'; echo 'void *vrev_exports_[] = {'; \
		grep -v '^#' $(SYMBOLS) | sed 's/.*/    (void *)\&&,/'; echo '};'; \
		echo 'int main() { return vrev_exports_[0] == 0; }'; } > $(BUILD)/headers/exports.cc
	@$(CXX) $(HEADERS_CXX_FLAGS) -Iinclude -c -o $(BUILD)/headers/exports.o \
		$(BUILD)/headers/exports.cc || { echo "headers: an export of $(SYMBOLS) is not" \
		"declared in include/vrev.h"; exit 1; }
	$(if $(filter 1,$(SANITIZE)),,@$(CXX) -o $(BUILD)/headers/exports $(BUILD)/headers/exports.o \
		$(BUILD)/$(SONAME) || { echo "headers: an export of $(SYMBOLS) is declared without" \
		"C linkage (extern \"C\") in include/vrev.h"; exit 1; })
	@echo "headers: all public headers compile standalone (-pedantic C89, C99," \
		"C++98, C++11), every export declared$(if $(filter 1,$(SANITIZE)),, and linked from C++)"

# Every tracked .c/.h formatted as .clang-format says (clang-format 14); `make format-fix`
# formats the tree in place.
format:
	@bash scripts/check-format.sh

format-fix:
	@bash scripts/check-format.sh --fix

# Which folder may include which (DESIGN.md §3; the rules and their named exceptions are in
# scripts/check-layers.py, explained in docs/layers.md).
layers:
	@$(PYTHON) scripts/check-layers.py

# The systemd units, with ExecStart= pointing at the vrev just built: systemd-analyze verify
# (it needs no running systemd) checks every key, that the command exists and that the man
# page in Documentation= opens (MANPATH: ours); any message it prints fails. Then the
# hardening's exposure score must stay at most 2.0 ("OK"; the units score 1.5).
UNITS := $(shell grep -v '^\#' dist/systemd/units | cut -d'|' -f1)
# $(call write_units,BINDIR,DIR): the units from dist/systemd/vrev.service.in into DIR.
write_units = grep -v '^\#' dist/systemd/units | while IFS='|' read -r unit desc args; do \
	sed -e '/^\#:/d' -e "s|@UNIT@|$$unit|g" -e "s|@DESCRIPTION@|$$desc|g" \
		-e "s|@ARGS@|$$args|g" -e 's|@BINDIR@|$(1)|g' dist/systemd/vrev.service.in \
		> $(2)/$$unit || exit 1; chmod 644 $(2)/$$unit; done
units: $(VREV_BIN)
	@command -v systemd-analyze >/dev/null || { echo "units: systemd-analyze not found" \
		"(apt-get install systemd, or scripts/install-deps.sh)"; exit 1; }
	@set -e; d=$(BUILD)/units-check; rm -rf $$d; mkdir -p $$d; \
	$(call write_units,$(abspath $(BUILD)),$$d); \
	out=$$(cd $$d && MANPATH=$(CURDIR)/man systemd-analyze verify $(UNITS:%=./%) 2>&1) \
		|| { echo "$$out"; echo "units: systemd-analyze verify failed"; exit 1; }; \
	if [ -n "$$out" ]; then echo "$$out"; echo "units: systemd-analyze verify warned"; exit 1; fi; \
	for u in $(UNITS); do (cd $$d && systemd-analyze security --offline=yes --threshold=20 \
		./$$u >/dev/null 2>&1) || { echo "units: $$u exposure above 2.0:"; \
		(cd $$d && systemd-analyze security --offline=yes ./$$u | grep '✗'); exit 1; }; done; \
	echo "units: $(UNITS) verified (systemd-analyze verify, exposure <= 2.0)"

# The man pages: mandoc's lint at its strictest (style), less the cross-references it cannot
# resolve on this machine (its mandoc.db).
MANPAGES := $(wildcard man/man*/*.[1-9])
manlint:
	@command -v mandoc >/dev/null || { echo "manlint: mandoc not found (apt-get install" \
		"mandoc, or scripts/install-deps.sh)"; exit 1; }
	@out=$$(MANPATH=$(CURDIR)/man mandoc -T lint -W style $(MANPAGES) 2>&1 | \
		grep -v -e 'referenced manual not found' -e 'mandoc.db'); \
	if [ -n "$$out" ]; then echo "$$out"; echo "manlint: mandoc -T lint complained"; exit 1; fi; \
	if man --version 2>/dev/null | grep -q man-db; then for m in $(MANPAGES); do \
		out=$$(MANWIDTH=80 man --warnings -l $$m 2>&1 >/dev/null | grep -v 'mandoc.db'); \
		if [ -n "$$out" ]; then echo "$$out"; echo "manlint: groff warned ($$m)"; exit 1; fi; \
	done; fi; \
	echo "manlint: $(MANPAGES) lint-clean (mandoc -T lint -W style; man --warnings)"

asan: deps
	$(MAKE) BUILD=$(ASAN_BUILD) CC=clang SANITIZE=1 VREV_NO_DEPS=1 check

# --- fuzzing (clang + libFuzzer) ---------------------------------------------------------------
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
fuzz: $(FUZZ_BINS)
	@echo "fuzz targets in $(FUZZ_BUILD); run e.g. $(FUZZ_BUILD)/fuzz_mux tests/fuzz/corpus/fuzz_mux"

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(LIB_SRCS)
	@mkdir -p $(dir $@)
	clang -std=c11 $(CPPFLAGS_ALL) -DVREV_FUZZING $(FUZZ_FLAGS) -o $@ $< $(LIB_SRCS) $(LIBS_ALL)

# --- benchmarks (not part of check) ------------------------------------------------------------
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: bench/%.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(STATIC_LIB) $(LIBS_ALL)

# Benchmarks against V2Ray 4.34 (not part of check): full run ~13 min on 2 cores, writes
# bench/results/<date>.json and .png; make bench BENCH_ARGS=--quick for a ~1-2 minute smoke run.
bench:
	@bash bench/run.sh $(BENCH_ARGS)

bench-micro: $(BENCH_BINS)
	@set -e; for b in $(BENCH_BINS); do echo "== $$b"; $$b; done

# --- install -----------------------------------------------------------------------------------
$(BUILD)/libvrev.pc: pkgconfig/libvrev.pc.in $(VERSION_H)
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
		-e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
		-e 's|@REQUIRES_PRIVATE@|$(PC_REQUIRES_PRIVATE) libevent jansson libnghttp2|g' \
		-e 's|@LIBS_PRIVATE@|$(PC_LIBS_PRIVATE) -lwslay -pthread|g' $< > $@

install: all $(BUILD)/libvrev.pc
	install -d $(DESTDIR)$(INCLUDEDIR)/vrev $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(BASHCOMPDIR)
	install -m 644 include/vrev.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 include/vrev/*.h $(DESTDIR)$(INCLUDEDIR)/vrev/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libvrev.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libvrev.so
	install -m 644 $(BUILD)/libvrev.pc $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 755 $(VREV_BIN) $(DESTDIR)$(BINDIR)/
	$(call write_units,$(BINDIR),$(DESTDIR)$(SYSTEMDUNITDIR))
	install -m 644 man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/man3/*.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 dist/bash-completion/vrev $(DESTDIR)$(BASHCOMPDIR)/vrev

uninstall:
	rm -rf $(DESTDIR)$(INCLUDEDIR)/vrev
	rm -f $(DESTDIR)$(INCLUDEDIR)/vrev.h $(DESTDIR)$(LIBDIR)/libvrev.a \
		$(DESTDIR)$(LIBDIR)/libvrev.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/libvrev.so $(DESTDIR)$(PKGCONFIGDIR)/libvrev.pc \
		$(DESTDIR)$(BINDIR)/vrev $(UNITS:%=$(DESTDIR)$(SYSTEMDUNITDIR)/%) \
		$(patsubst man/%,$(DESTDIR)$(MANDIR)/%,$(MANPAGES)) $(DESTDIR)$(BASHCOMPDIR)/vrev

$(BUILD)/examples/%: examples/%.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(STATIC_LIB) $(LIBS_ALL)

examples: $(EXAMPLE_BINS)

# mux_pair runs as a smoke test of the public API; the embedding examples need peers and run
# from tests/e2e/test_examples.py.
run-examples: examples
	@echo "== $(BUILD)/examples/mux_pair"; $(BUILD)/examples/mux_pair

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/obj-test -name '*.d' 2>/dev/null)
