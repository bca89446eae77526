# SPDX-License-Identifier: MIT
# wsd: a plain GNU Makefile. `make` builds, `make run` starts wsd, `make test` runs every suite,
# `make asan` runs them again under AddressSanitizer and UBSan. V=1 shows the commands.

BUILD ?= build
CC ?= gcc
PKG_CONFIG ?= pkg-config
PKGS := liburing wolfssl zlib libsystemd

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
        -Wcast-align -Wwrite-strings -Wundef -Wvla -Wformat=2 -Wimplicit-fallthrough
OPT ?= -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
WERROR ?= -Werror
CPPFLAGS += -D_GNU_SOURCE -I.
CFLAGS += -std=gnu11 $(OPT) $(WARN) $(WERROR) $(SANITIZE) -MMD -MP
LDFLAGS += $(SANITIZE)
LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC := $(wildcard proto/*.c) $(wildcard core/*.c) \
           $(filter-out supervisor/main.c supervisor/wsctl.c,$(wildcard supervisor/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)

# Installation directories (make install PREFIX=/usr DESTDIR=/tmp/pkg).
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
MAN8DIR ?= $(PREFIX)/share/man/man8
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)

.PHONY: all deps deps-test run test unit asan clean fuzz bench bench-quick install uninstall run-tls bench-tls
all: $(BUILD)/wsd $(BUILD)/wsctl $(BUILD)/wsd.8

deps:
	$(Q)./scripts/install-deps.sh build

deps-test:
	$(Q)./scripts/install-deps.sh test

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libwsd.a: $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# Every worker is a fork of wsd and maps what wsd maps, so wsd is linked for cheap forks:
# - -z now: every symbol is bound once, in the supervisor at start, instead of lazily in each
#   fresh worker (each first call through the PLT would write, and so copy, a GOT page);
# - liburing, wolfSSL and zlib linked in (their Debian .a files): 16 fewer mappings per worker,
#   so fewer page tables and VMAs to copy at each fork and to hold per connection. Libraries
#   without a .a (and glibc) stay shared.
WSD_STATIC_LIBS := -luring -lwolfssl -lz
WSD_LIBS := -Wl,-Bstatic $(WSD_STATIC_LIBS) -Wl,-Bdynamic $(filter-out $(WSD_STATIC_LIBS),$(LIBS)) -lm
$(BUILD)/wsd: $(BUILD)/supervisor/main.o $(BUILD)/libwsd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -Wl,-z,now -o $@ $^ $(WSD_LIBS)

$(BUILD)/wsctl: $(BUILD)/supervisor/wsctl.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libwsd.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(CMOCKA_LIBS)

unit: $(UNIT_BIN)

# wsd(8) comes from the binary's own tables: it cannot list a variable wsd does not read.
$(BUILD)/wsd.8: $(BUILD)/wsd
	@$(if $(Q),echo "  MAN     $@")
	$(Q)$(BUILD)/wsd --help-man >$@.tmp && mv $@.tmp $@

# The units name the installed paths; the example settings file never replaces an edited one,
# and uninstall removes it only while it is unchanged.
install: $(BUILD)/wsd $(BUILD)/wsctl $(BUILD)/wsd.8
	$(Q)install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MAN8DIR) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/wsd
	$(Q)install -m 0755 $(BUILD)/wsd $(DESTDIR)$(SBINDIR)/wsd
	$(Q)install -m 0755 $(BUILD)/wsctl $(DESTDIR)$(BINDIR)/wsctl
	$(Q)install -m 0644 $(BUILD)/wsd.8 $(DESTDIR)$(MAN8DIR)/wsd.8
	$(Q)sed -e 's#/usr/local/sbin/wsd#$(SBINDIR)/wsd#' -e 's#/etc/wsd/wsd.env#$(SYSCONFDIR)/wsd/wsd.env#' \
	    contrib/wsd.service >$(DESTDIR)$(UNITDIR)/wsd.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/wsd.service
	$(Q)install -m 0644 contrib/wsd.socket contrib/wsd-tls.socket $(DESTDIR)$(UNITDIR)/
	$(Q)install -m 0644 contrib/wsd.sysusers $(DESTDIR)$(SYSUSERSDIR)/wsd.conf
	$(Q)[ -e $(DESTDIR)$(SYSCONFDIR)/wsd/wsd.env ] || \
	    install -m 0644 contrib/wsd.env $(DESTDIR)$(SYSCONFDIR)/wsd/wsd.env
	@echo "installed wsd in $(DESTDIR)$(SBINDIR), units in $(DESTDIR)$(UNITDIR)"

uninstall:
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/wsd $(DESTDIR)$(BINDIR)/wsctl $(DESTDIR)$(MAN8DIR)/wsd.8 \
	    $(DESTDIR)$(UNITDIR)/wsd.service $(DESTDIR)$(UNITDIR)/wsd.socket \
	    $(DESTDIR)$(UNITDIR)/wsd-tls.socket $(DESTDIR)$(SYSUSERSDIR)/wsd.conf
	$(Q)if cmp -s contrib/wsd.env $(DESTDIR)$(SYSCONFDIR)/wsd/wsd.env; then \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/wsd/wsd.env; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/wsd/wsd.env ]; then \
	    echo "kept $(DESTDIR)$(SYSCONFDIR)/wsd/wsd.env: it was edited"; fi
	$(Q)rmdir $(DESTDIR)$(SYSCONFDIR)/wsd 2>/dev/null || true

# Keep the unit tests' objects between runs.
.SECONDARY:

FUZZ_TIME ?= 60
fuzz:
	$(Q)BUILD=$(BUILD) ./tests/fuzz/run.sh $(FUZZ_TIME)

BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)
$(BUILD)/bench/wsbench: $(BENCH_OBJ) $(BUILD)/libwsd.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

bench: $(BUILD)/wsd $(BUILD)/bench/wsbench
	$(Q)./scripts/install-deps.sh bench
	$(Q)BUILD=$(BUILD) ./bench/run.sh

bench-quick: $(BUILD)/wsd $(BUILD)/bench/wsbench
	$(Q)./scripts/install-deps.sh bench
	$(Q)BUILD=$(BUILD) QUICK=1 ./bench/run.sh

# wss:// against ws:// on one wsd: handshakes/s and echo as ratios (bench/tls.sh)
bench-tls: $(BUILD)/wsd $(BUILD)/bench/wsbench
	$(Q)BUILD=$(BUILD) ./bench/tls.sh

run: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/wsd
	@echo "wsd: starting the echo server on ws://127.0.0.1:8080/ (stop it with Ctrl-C)"
	$(Q)WSD_LISTEN=$${WSD_LISTEN:-127.0.0.1:8080} exec ./$(BUILD)/wsd

# wss:// with a self-signed certificate made on the spot (kept in $(BUILD)/run-tls/, never
# committed); ws:// stays on 8080.
run-tls: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/wsd
	$(Q)mkdir -p $(BUILD)/run-tls && cd $(BUILD)/run-tls && { [ -s cert.pem ] && \
	    openssl x509 -in cert.pem -noout -checkend 3600 >/dev/null 2>&1 || \
	    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
	        -out cert.pem -days 30 -subj /CN=localhost \
	        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null; }
	@echo "wsd: starting the echo server on wss://$${WSD_TLS_LISTEN:-127.0.0.1:8443}/ (self-signed: $(BUILD)/run-tls/cert.pem; stop with Ctrl-C)"
	$(Q)WSD_LISTEN=$${WSD_LISTEN:-127.0.0.1:8080} WSD_TLS_LISTEN=$${WSD_TLS_LISTEN:-127.0.0.1:8443} \
	    WSD_TLS_CERT=$(BUILD)/run-tls/cert.pem WSD_TLS_KEY=$(BUILD)/run-tls/key.pem exec ./$(BUILD)/wsd

test: deps-test
	$(Q)$(MAKE) --no-print-directory $(BUILD)/wsd $(BUILD)/wsctl $(BUILD)/bench/wsbench unit
	$(Q)BUILD=$(BUILD) ./tests/run.sh

asan: deps-test
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all" build-asan/wsd build-asan/bench/wsbench \
	    build-asan/wsctl unit
	$(Q)BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 WSD_TEST_SLOW=$${WSD_TEST_SLOW:-2} \
	    ./tests/run.sh

clean:
	rm -rf build build-asan

# The dashboard page is compiled in with .incbin, which -MMD does not see.
$(BUILD)/supervisor/dashboard.o: supervisor/dashboard.html

-include $(BENCH_OBJ:.o=.d)
-include $(LIB_OBJ:.o=.d) $(BUILD)/supervisor/main.d $(BUILD)/supervisor/wsctl.d $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)
