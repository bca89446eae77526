/* SPDX-License-Identifier: MIT */
/* wsctl: the operator's command line for a running wsd, over its control socket. It checks
 * only its own arguments; wsd validates codes and reasons and answers with one clear line. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: wsctl [-s SOCKET | -p PORT] COMMAND\n"
            "Commands:\n"
            "  list [--json]                      open connections\n"
            "  show ID [--json]                   one connection\n"
            "  kill ID [--code N] [--reason TEXT] [--force]\n"
            "                                     close it (default code 1008); --force: SIGKILL\n"
            "  kill --peer IP [--code N] [--reason TEXT] [--force]\n"
            "                                     close every connection from IP\n"
            "  stats [--json]                     totals since start\n"
            "  drain                              stop accepting, close all with 1001, exit\n"
            "The socket is -s, else $WSD_CONTROL_SOCKET, else ${XDG_RUNTIME_DIR:-/run}/wsd-PORT.sock "
            "(PORT from -p, default 8080).\n");
}

static int build_kill(int argc, char **argv, char *req, size_t cap)
{
    const char *target = NULL, *peer = NULL, *code = "1008", *reason = "";
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (strcmp(argv[i], "--code") == 0 && i + 1 < argc)
            code = argv[++i];
        else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
            reason = argv[++i];
        else if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            peer = argv[++i];
        else if (argv[i][0] != '-' && !target)
            target = argv[i];
        else
            return -1;
    }
    if (!!target == !!peer)
        return -1;
    if (strchr(reason, '\n')) {
        fprintf(stderr, "wsctl: the reason may not contain a newline\n");
        return -2;
    }
    int n = snprintf(req, cap, "%s %s %s %d %s\n", peer ? "killpeer" : "kill", peer ? peer : target,
                     code, force, reason);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int build_request(int argc, char **argv, char *req, size_t cap)
{
    const char *cmd = argv[0];
    int json = argc > 1 && strcmp(argv[argc - 1], "--json") == 0;
    if (strcmp(cmd, "list") == 0 && argc <= 2 && (argc == 1 || json))
        snprintf(req, cap, "list%s\n", json ? " json" : "");
    else if (strcmp(cmd, "stats") == 0 && argc <= 2 && (argc == 1 || json))
        snprintf(req, cap, "stats%s\n", json ? " json" : "");
    else if (strcmp(cmd, "drain") == 0 && argc == 1)
        snprintf(req, cap, "drain\n");
    else if (strcmp(cmd, "show") == 0 && (argc == 2 || (argc == 3 && json)))
        snprintf(req, cap, "show %s%s\n", argv[1], json ? " json" : "");
    else if (strcmp(cmd, "kill") == 0)
        return build_kill(argc - 1, argv + 1, req, cap);
    else
        return -1;
    return 0;
}

static int talk(const char *path, const char *req)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "wsctl: socket path too long: %s\n", path);
        return EXIT_USAGE;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "wsctl: cannot connect to %s: %s (is wsd running?)\n", path,
                strerror(errno));
        return EXIT_REFUSED;
    }
    /* A refusal (permission) may arrive instead of taking the request: read it either way. */
    (void)!write(fd, req, strlen(req));
    /* The first line is the verdict: "OK", or "ERR <why>" for stderr. */
    char buf[65536];
    size_t have = 0;
    ssize_t n;
    int status = -1;
    while ((n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
        have += (size_t)n;
        if (status < 0) {
            char *nl = memchr(buf, '\n', have);
            if (!nl && have < sizeof(buf))
                continue;
            size_t line = nl ? (size_t)(nl - buf) + 1 : have;
            if (strncmp(buf, "OK", 2) == 0) {
                status = EXIT_OK;
            } else {
                status = EXIT_REFUSED;
                int len = (int)(line - (nl ? 1 : 0)) - 4; /* without "ERR " and the newline */
                fprintf(stderr, "wsctl: %.*s\n", len > 0 ? len : 0, buf + 4);
            }
            memmove(buf, buf + line, have - line);
            have -= line;
        }
        if (status == EXIT_OK) {
            fwrite(buf, 1, have, stdout);
            have = 0;
        }
    }
    close(fd);
    if (status < 0) {
        fprintf(stderr, "wsctl: %s closed without an answer\n", path);
        return EXIT_REFUSED;
    }
    return status;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a refusing wsd may close before reading: report, do not die */
    const char *path = getenv("WSD_CONTROL_SOCKET");
    const char *port = "8080";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--socket") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if ((strcmp(argv[i], "-p") == 0 || strcmp(argv[i], "--port") == 0) &&
                   i + 1 < argc) {
            port = argv[++i];
            path = NULL;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else {
            break;
        }
    }
    char req[512];
    int r = i < argc ? build_request(argc - i, argv + i, req, sizeof(req)) : -1;
    if (r < 0) {
        if (r == -1)
            usage(stderr);
        return EXIT_USAGE;
    }
    char def[256];
    if (!path || !*path) {
        const char *dir = getenv("XDG_RUNTIME_DIR");
        snprintf(def, sizeof(def), "%s/wsd-%s.sock", dir && *dir == '/' ? dir : "/run", port);
        path = def;
    }
    return talk(path, req);
}
