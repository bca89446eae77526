/* SPDX-License-Identifier: MIT */
/* The close handshake of the reference servers (ref_fork.c, ref_closer.c), without libc: raw
 * x86-64 system calls, so that the exec'd closer can be a static binary with nothing else in
 * it. fd is an upgraded connection whose client will send a close frame (wsbench conn): read
 * frames until it comes, skipping others, answer it with the same payload, and wait for the
 * client's FIN. */
#ifndef WSD_BENCH_REF_CLOSE_H
#define WSD_BENCH_REF_CLOSE_H

#if !defined(__x86_64__)
#error "the reference servers use x86-64 system call numbers"
#endif

#define REF_SYS_READ 0
#define REF_SYS_WRITE 1
#define REF_SYS_SHUTDOWN 48
#define REF_SHUT_WR 1

static inline long ref_sys(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

/* 0 once the close handshake is done, -1 on anything else (EOF first, a frame wsbench conn
 * never sends: extended lengths, unmasked). */
static inline int ref_close_handshake(int fd)
{
    unsigned char in[512], out[2 + 125];
    long have = 0;
    for (;;) {
        /* a whole frame in in[0, have)? client frames are masked: 2 + 4 + payload bytes */
        while (have >= 2) {
            long len = in[1] & 0x7f;
            if (!(in[1] & 0x80) || len > 125)
                return -1;
            if (have < 6 + len)
                break;
            if ((in[0] & 0x0f) == 0x8) {
                out[0] = 0x88;
                out[1] = (unsigned char)len;
                for (long i = 0; i < len; i++)
                    out[2 + i] = in[6 + i] ^ in[2 + (i & 3)];
                if (ref_sys(REF_SYS_WRITE, fd, (long)out, 2 + len) != 2 + len)
                    return -1;
                ref_sys(REF_SYS_SHUTDOWN, fd, REF_SHUT_WR, 0);
                while (ref_sys(REF_SYS_READ, fd, (long)in, sizeof(in)) > 0)
                    ;
                return 0;
            }
            for (long i = 6 + len; i < have; i++) /* skip it */
                in[i - 6 - len] = in[i];
            have -= 6 + len;
        }
        long n = ref_sys(REF_SYS_READ, fd, (long)(in + have), (long)sizeof(in) - have);
        if (n <= 0)
            return -1;
        have += n;
    }
}

#endif
