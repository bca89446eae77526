/* SPDX-License-Identifier: MIT */
/* wsd: a WebSocket server where every connection is its own process, ended race-free by pidfd.
 * Configuration comes only from WSD_* environment variables (wsd --help). */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "supervisor/exit.h"
#include "supervisor/layout.h"
#include "supervisor/manpage.h"
#include "supervisor/supervisor.h"

#define WSD_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out, "Usage: wsd [--help | --help-man | --version]\n"
                 "A WebSocket (RFC 6455) server: one process per connection, supervised by "
                 "pidfd.\n\n");
}

/* Before every constructor, the libraries' included: some of them allocate. */
__attribute__((section(".preinit_array"), used)) static void (*const preinit)(void) =
    wsd_layout_heap_near_libs;

int main(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            usage(stdout);
            wsd_config_print_help(stdout);
            return WSD_EXIT_OK;
        }
        if (strcmp(argv[1], "--help-man") == 0) { /* roff for wsd(8): make install uses it */
            wsd_manpage_print(stdout, WSD_VERSION);
            return WSD_EXIT_OK;
        }
        if (strcmp(argv[1], "--version") == 0) {
            printf("wsd " WSD_VERSION "\n");
            return WSD_EXIT_OK;
        }
        fprintf(stderr, "wsd: unknown argument '%s'\n", argv[1]);
        usage(stderr);
        return WSD_EXIT_CONFIG;
    }
    struct wsd_config cfg;
    if (wsd_config_load(&cfg, stderr) < 0)
        return WSD_EXIT_CONFIG;
    wsd_log_setup((enum wsd_log_level)cfg.log_level, "wsd");
    wsd_log_set_format((enum wsd_log_format)cfg.log_format);
    return wsd_supervisor_run(&cfg);
}
