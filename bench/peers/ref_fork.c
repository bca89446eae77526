/* SPDX-License-Identifier: MIT */
/* The reference for `wsbench conn`: the least a process-per-connection WebSocket server does,
 * to show what process creation alone allows next to wsd. One small process accepts, reads the
 * upgrade request and answers 101 itself (blocking, one connection at a time); each
 * connection's close handshake then runs in a fresh process of its own, reaped by the kernel
 * (SIGCHLD ignored):
 *   fork: a fork() of this process (what any forked worker costs at the least);
 *   exec: a vfork() + execve() of ref_closer, a static binary without libc (the cheapest fresh
 *         process: PLATFORM.md).
 * It checks nothing a real server must (Origin, versions, limits) and answers nothing but the
 * close frame: for conn only.
 * usage: ref_fork PORT fork|exec [CLOSER] (binds 127.0.0.1) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/handshake.h"
#include "ref_close.h"

/* Read the request and answer 101. 0, or -1 (the caller closes the connection). */
static int upgrade(int fd)
{
    char req[4096], *key, *end, accept[WSD_ACCEPT_LEN + 1], resp[512];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
        if (n == sizeof(req) - 1)
            return -1;
    }
    key = strcasestr(req, "\r\nSec-WebSocket-Key:");
    if (!key)
        return -1;
    key += strlen("\r\nSec-WebSocket-Key:");
    key += strspn(key, " \t");
    end = strstr(key, "\r\n");
    if (wsd_handshake_accept(key, (size_t)(end - key), accept) < 0)
        return -1;
    size_t len = wsd_handshake_response_101(resp, sizeof(resp), accept, NULL, NULL);
    return len > 0 && write(fd, resp, len) == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "fork") != 0 && strcmp(argv[2], "exec") != 0) ||
        (argv[2][0] == 'e' && argc < 4)) {
        fprintf(stderr, "usage: ref_fork PORT fork|exec [CLOSER]\n");
        return 64;
    }
    bool exec_mode = argv[2][0] == 'e';
    signal(SIGCHLD, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1024) < 0) {
        perror("ref_fork: listen");
        return 1;
    }
    char *closer_argv[] = {"ref_closer", NULL}, *closer_envp[] = {NULL};
    for (;;) {
        int fd = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        if (upgrade(fd) == 0) {
            pid_t pid = exec_mode ? vfork() : fork();
            if (pid == 0 && exec_mode) { /* the connection becomes fd 0, without CLOEXEC */
                if (dup2(fd, 0) == 0)
                    execve(argv[3], closer_argv, closer_envp);
                _exit(127);
            }
            if (pid == 0)
                _exit(ref_close_handshake(fd) == 0 ? 0 : 1);
            if (pid < 0)
                perror("ref_fork: fork");
        }
        close(fd);
    }
}
