/* SPDX-License-Identifier: MIT */
/* wsd(8) in roff, generated from the configuration table and the signal and exit-status tables
 * (wsd --help-man), so the installed page lists exactly what this binary reads and does. */
#ifndef WSD_SUPERVISOR_MANPAGE_H
#define WSD_SUPERVISOR_MANPAGE_H

#include <stdio.h>

/* Write the page to out; version goes in its footer. */
void wsd_manpage_print(FILE *out, const char *version);

#endif
