/* SPDX-License-Identifier: MIT */
/* The dashboard page (supervisor/dashboard.html) compiled into the binary as it is: no
 * generated source, no external assets. The Makefile makes this object depend on the page. */
#include "supervisor/metrics_http.h"

__asm__(".section .rodata\n"
        ".global wsd_dashboard_html\n"
        ".type wsd_dashboard_html, @object\n"
        ".balign 16\n"
        "wsd_dashboard_html:\n"
        ".incbin \"supervisor/dashboard.html\"\n"
        ".global wsd_dashboard_html_end\n"
        "wsd_dashboard_html_end:\n"
        ".byte 0\n"
        ".size wsd_dashboard_html, . - wsd_dashboard_html\n"
        ".previous\n");

extern const char wsd_dashboard_html_end[];

size_t wsd_dashboard_html_len(void)
{
    return (size_t)(wsd_dashboard_html_end - wsd_dashboard_html);
}
