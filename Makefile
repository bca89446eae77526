# SPDX-License-Identifier: MIT
# wsd: a plain GNU Makefile. `make` builds, `make run` starts wsd, `make test` runs every suite,
# `make asan` runs them again under AddressSanitizer and UBSan. V=1 shows the commands.

BUILD ?= build
CC ?= gcc
PKG_CONFIG ?= pkg-config
PKGS := liburing wolfssl zlib

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

.PHONY: all deps deps-test run test unit asan clean fuzz bench bench-quick
all: $(BUILD)/wsd $(BUILD)/wsctl

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

run: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/wsd
	@echo "wsd: starting the echo server on ws://127.0.0.1:8080/ (stop it with Ctrl-C)"
	$(Q)WSD_LISTEN=$${WSD_LISTEN:-127.0.0.1:8080} exec ./$(BUILD)/wsd

test: deps-test
	$(Q)$(MAKE) --no-print-directory $(BUILD)/wsd $(BUILD)/wsctl $(BUILD)/bench/wsbench unit
	$(Q)BUILD=$(BUILD) ./tests/run.sh

asan: deps-test
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all" build-asan/wsd build-asan/bench/wsbench \
	    build-asan/wsctl unit
	$(Q)BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./tests/run.sh

clean:
	rm -rf build build-asan

# The dashboard page is compiled in with .incbin, which -MMD does not see.
$(BUILD)/supervisor/dashboard.o: supervisor/dashboard.html

-include $(BENCH_OBJ:.o=.d)
-include $(LIB_OBJ:.o=.d) $(BUILD)/supervisor/main.d $(BUILD)/supervisor/wsctl.d $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)
