/* SPDX-License-Identifier: MIT */
/* wsbench: a WebSocket load generator for wsd and its peers. The run configuration (filled by
 * the command line, wsbench.c) and the results (filled by the connection engine, engine.c). */
#ifndef WSD_BENCH_WSBENCH_H
#define WSD_BENCH_WSBENCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/hist.h"

enum wsb_mode {
    WSB_MODE_CONN,  /* open, upgrade, close handshake, repeat */
    WSB_MODE_ECHO,  /* C connections, P messages in flight each */
    WSB_MODE_HOLD,  /* N idle connections held open */
    WSB_MODE_CHURN, /* open, upgrade, one echo, close, repeat */
    WSB_MODE_KILL,  /* N connections open; wsd closes them one at a time on request */
    WSB_MODE_SPAWN, /* no server: the rate of empty clone3 + exit + reap here */
    WSB_MODE_SWITCH, /* no server: a wakeup and switch among c processes (or threads) */
};

#define WSB_MAX_PIDS 16

struct wsb_config {
    enum wsb_mode mode;
    const char *url;
    const char *label;       /* free text copied into the JSON line */
    struct sockaddr_in addr; /* from the URL: IPv4 only */
    char host[300];          /* Host header: "host:port" */
    char path[256];
    unsigned conns;          /* -c: connections (echo) or connections in flight (conn, churn) */
    unsigned pipeline;       /* -p: messages in flight per connection (echo) */
    size_t size;             /* -s: payload bytes per message */
    double duration_s;       /* -d: measured seconds (hold: seconds held) */
    bool binary;
    unsigned hold_n;         /* -n (hold, kill) */
    const char *control;     /* kill: wsd's control socket */
    uint16_t kill_code;      /* kill: the close code asked for, and checked in the close frame */
    bool warm;               /* kill: each connection echoes one message before the kills */
    bool threads;            /* switch: a ring of threads (one address space), not processes */
    unsigned connect_batch;  /* connects in flight while opening (echo, hold) */
    double timeout_s;        /* handshake and close timeout per connection */
    double settle_s;         /* hold, kill: wait after opening before measuring */
    pid_t pids[WSB_MAX_PIDS];
    unsigned npids;
    bool tls;             /* wss:// or --tls: the epoll engine with wolfSSL (tls_engine.c) */
    bool epoll;           /* --epoll: ws:// through the same engine, as the baseline for tls */
    unsigned tls_version; /* --tls-version: 12 or 13; 0 = the highest both speak */
};

struct wsb_result {
    double elapsed_s;        /* the measured window */
    uint64_t done;           /* echo: messages echoed; conn/churn: cycles; hold: held at the end;
                              * kill: close frames received for kills; spawn: processes reaped;
                              * switch: hops */
    uint64_t opened;         /* handshakes completed */
    uint64_t errors;         /* connect/handshake failures, resets, unexpected EOF */
    uint64_t server_closes;  /* close frames the server started */
    uint64_t close_timeouts; /* server did not answer the close or end TCP in time */
    double open_s;           /* hold/echo: time to open every connection */
    uint64_t unmapped;       /* kill: open connections wsd's list did not name */
    struct wsb_hist lat;     /* echo: round trip; conn: handshake; churn: whole cycle; kill: kill
                              * request -> close frame; spawn: clone3 -> reaped; switch: per hop (ns) */
};

#endif
