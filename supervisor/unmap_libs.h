/* SPDX-License-Identifier: MIT */
/* The worker template's last step before it clones workers: unmapping the shared libraries
 * only the supervisor calls (libsystemd for sd_notify and socket activation, libseccomp for
 * compiling the filter, and what they pull in). Every worker is a copy of the template, and
 * a fork's and an exit's cost grows with the mappings copied and torn down: these libraries
 * are about 40 of a worker's 70. */
#ifndef WSD_SUPERVISOR_UNMAP_LIBS_H
#define WSD_SUPERVISOR_UNMAP_LIBS_H

/* Unmap them from this process; nothing may call into them afterwards (the template and its
 * workers never do). Returns how many libraries were unmapped. */
int wsd_unmap_supervisor_libs(void);

#endif
