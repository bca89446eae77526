/* SPDX-License-Identifier: MIT */
/* The man page: fixed sections around three generated lists (ENVIRONMENT from core/config.c's
 * table, SIGNALS and EXIT STATUS from the tables below, which name what supervisor.c and
 * exit.h implement). */
#include "supervisor/manpage.h"

#include <stddef.h>

#include "core/config.h"
#include "supervisor/exit.h"

struct entry {
    const char *name;
    const char *text;
};

static const struct entry signals[] = {
    {"SIGTERM, SIGINT", "Stop: stop accepting, close every connection with 1001 (going away), "
                        "SIGKILL workers still running after WSD_SHUTDOWN_GRACE_MS, exit 0. "
                        "Sends STOPPING=1 to systemd."},
    {"SIGHUP", "Reload: read the environment and WSD_ENV_FILE again. Variables marked "
               "\"changes on SIGHUP\" apply to connections that start afterwards (idle workers "
               "are replaced); a change to any other is logged as needing a restart and "
               "ignored. A bad file or value is refused with one log line and nothing changes. "
               "The TLS certificate and key are loaded again. Sends RELOADING=1 and "
               "MONOTONIC_USEC, then READY=1."},
    {"SIGUSR2", "Upgrade without downtime: start the wsd binary now at the path this one was "
                "started from, passing it the listening sockets and the control socket "
                "(LISTEN_FDS). Once it reports ready, this process tells systemd MAINPID= of "
                "the new one, stops accepting, lets its connections run until they end or "
                "WSD_DRAIN_TIMEOUT_MS passes (then closes them with 1001) and exits 0. If the "
                "new one exits or is not ready within WSD_UPGRADE_TIMEOUT_MS (it is then "
                "killed), this one keeps serving and logs why."},
};

static const struct entry exits[] = {
    {"0", "Stopped on request, or drained after an upgrade."},
    {"1", "A runtime failure (the acceptor could not run, an internal error)."},
    {"2", "Bad configuration: one line on stderr names the variable, the value and what is "
          "allowed. systemd does not restart it (RestartPreventExitStatus=2)."},
    {"3", "Reserved for children: the host cannot run wsd (e.g. no io_uring)."},
};

_Static_assert(WSD_EXIT_OK == 0 && WSD_EXIT_FAILURE == 1 && WSD_EXIT_CONFIG == 2 &&
                   WSD_EXIT_FATAL == 3,
               "the EXIT STATUS table follows supervisor/exit.h");

/* roff: a backslash is \e, and a line must not start with a control character. */
static void text(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s; s++)
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
}

static void tagged(FILE *out, const char *tag, const char *body)
{
    fputs(".TP\n.B ", out);
    text(out, tag);
    fputc('\n', out);
    text(out, body);
    fputc('\n', out);
}

static void environment(FILE *out)
{
    fputs(".SH ENVIRONMENT\n"
          "Every variable is optional. A bad value stops startup with exit status 2.\n",
          out);
    struct wsd_config_doc d;
    for (size_t i = 0; wsd_config_describe(i, &d) == 0; i++) {
        fputs(".TP\n.B ", out);
        text(out, d.name);
        fputc('\n', out);
        text(out, d.help);
        fputs(".\n.br\nDefault: ", out);
        text(out, *d.def ? d.def : "(empty)");
        fputs("; allowed: ", out);
        text(out, d.allowed);
        fputs(d.runtime ? "; changes on SIGHUP.\n" : "; needs a restart or an upgrade.\n", out);
    }
    fputs(".TP\n.B LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES\n"
          "Sockets passed by systemd (or by the previous wsd on SIGUSR2), named ws, wss, "
          "wsd\\-control, wsd\\-upgrade. Passed listeners replace WSD_LISTEN and "
          "WSD_TLS_LISTEN.\n"
          ".TP\n.B NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID\n"
          "systemd's notification socket and watchdog; without NOTIFY_SOCKET nothing is sent.\n",
          out);
}

void wsd_manpage_print(FILE *out, const char *version)
{
    fprintf(out, ".TH WSD 8 \"\" \"wsd %s\" \"System Administration\"\n", version);
    fputs(".SH NAME\nwsd \\- WebSocket server with one process per connection\n"
          ".SH SYNOPSIS\n.B wsd\n[\\fB\\-\\-help\\fR | \\fB\\-\\-help\\-man\\fR | "
          "\\fB\\-\\-version\\fR]\n"
          ".SH DESCRIPTION\n"
          "wsd serves WebSocket (RFC 6455) connections, ws:// and wss://. Every connection is "
          "served by its own worker process, which the supervisor holds by a pidfd from its "
          "creation, so ending a connection (with \\fBwsctl\\fR(1), a heartbeat or an abuse "
          "detector) never signals the wrong process. Configuration comes only from the "
          "environment and from WSD_ENV_FILE. Under systemd it runs socket\\-activated with "
          "Type=notify (wsd.service, wsd.socket, wsd\\-tls.socket).\n",
          out);
    environment(out);
    fputs(".SH SIGNALS\n", out);
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
        tagged(out, signals[i].name, signals[i].text);
    fputs(".SH EXIT STATUS\n", out);
    for (size_t i = 0; i < sizeof(exits) / sizeof(exits[0]); i++)
        tagged(out, exits[i].name, exits[i].text);
    fputs(".SH FILES\n"
          ".TP\n.B ${XDG_RUNTIME_DIR:\\-/run}/wsd\\-PORT.sock\n"
          "The control socket \\fBwsctl\\fR(1) talks to, unless WSD_CONTROL_SOCKET names "
          "another.\n"
          ".TP\n.B wsd.service, wsd.socket, wsd\\-tls.socket\n"
          "The systemd units; reload with \\fBsystemctl reload wsd\\fR, upgrade with "
          "\\fBsystemctl kill \\-\\-kill\\-whom=main \\-\\-signal=SIGUSR2 wsd\\fR.\n"
          ".SH SEE ALSO\n\\fBwsctl\\fR(1), \\fBsystemd.socket\\fR(5), "
          "\\fBsd_notify\\fR(3)\n",
          out);
}
