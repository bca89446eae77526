/* SPDX-License-Identifier: MIT */
/* Proves core/wake.c on a real TCP connection over loopback, each case in a fresh process that
 * starts as a worker does (SIGTERM blocked, read through a signalfd): a blocking recv() ends at
 * its deadline, never before; a SIGTERM that comes before the wait, during it, or from a plain
 * kill() ends it and is caught with its own siginfo (sender, si_code, si_value: the connection
 * and close code a kill names); bytes end it as always; during an epoll wait a SIGTERM reaches
 * the signalfd (and wakes the wait), and at the end of the connection SIGTERM is the
 * signalfd's again, with anything caught but not taken. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/sys.h"
#include "core/wake.h"

#define WATCHDOG_MS 10000 /* a case that hangs in recv() fails instead */

/* Inside a case's process: report the first failed condition and leave. */
#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
            _exit(1);                                                                          \
        }                                                                                      \
    } while (0)

struct pair {
    int fd;   /* the worker's end */
    int peer; /* the client's */
    int sig_fd;
};

static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

static struct pair connect_pair(void)
{
    struct pair p;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0);
    REQUIRE(getsockname(l, (struct sockaddr *)&a, &len) == 0);
    p.peer = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(connect(p.peer, (struct sockaddr *)&a, sizeof(a)) == 0);
    p.fd = accept4(l, NULL, NULL, SOCK_NONBLOCK); /* as the acceptor hands it over */
    REQUIRE(p.fd >= 0);
    close(l);
    /* As the supervisor leaves a worker: every signal blocked but the synchronous ones. */
    sigset_t all, term;
    sigfillset(&all);
    for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
        sigdelset(&all, sync_signals[i]);
    REQUIRE(sigprocmask(SIG_BLOCK, &all, NULL) == 0);
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    p.sig_fd = signalfd(-1, &term, SFD_NONBLOCK);
    REQUIRE(p.sig_fd >= 0);
    return p;
}

static void queue_term(pid_t to, int value)
{
    union sigval v = {.sival_int = value};
    REQUIRE(sigqueue(to, SIGTERM, v) == 0);
}

/* Arm until it says the wait may start: after a signal it first says no, once. */
static void arm(const struct pair *p, uint64_t at_ms)
{
    for (int i = 0; i < 3; i++)
        if (wsd_wake_arm(p->fd, at_ms))
            return;
    REQUIRE(!"wsd_wake_arm never let the wait start");
}

/* The termination core/wake.c caught, exactly once, with what its sender put in it. */
static void expect_caught(int code, pid_t from, int value)
{
    struct wsd_wake_term t;
    REQUIRE(wsd_wake_term_caught() && wsd_wake_take_term(&t));
    REQUIRE(t.code == code && t.pid == from);
    if (code == SI_QUEUE)
        REQUIRE((int)t.value == value);
    REQUIRE(!wsd_wake_term_caught() && !wsd_wake_take_term(&t));
}

/* The one SIGTERM the signalfd holds. */
static void expect_in_signalfd(const struct pair *p, int code, pid_t from, int value)
{
    struct signalfd_siginfo si;
    REQUIRE(read(p->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si));
    REQUIRE(si.ssi_signo == SIGTERM && si.ssi_code == code && (pid_t)si.ssi_pid == from);
    if (code == SI_QUEUE)
        REQUIRE(si.ssi_int == value);
    REQUIRE(read(p->sig_fd, &si, sizeof(si)) < 0 && errno == EAGAIN);
}

static void recv_ends_empty(const struct pair *p)
{
    char b;
    REQUIRE(recv(p->fd, &b, 1, 0) < 0 && errno == EAGAIN);
}

static void case_deadline(void)
{
    struct pair p = connect_pair();
    uint64_t t0 = wsd_now_ms();
    arm(&p, t0 + 100);
    recv_ends_empty(&p);
    REQUIRE(wsd_now_ms() >= t0 + 100); /* ended by the deadline, not before it */
    REQUIRE(!wsd_wake_arm(p.fd, 0));   /* the timer fired: one epoll round */
    REQUIRE(!wsd_wake_term_caught());
    /* then blocking again, with no timer: bytes end the wait */
    REQUIRE(wsd_wake_arm(p.fd, 0));
    REQUIRE(send(p.peer, "ab", 2, 0) == 2);
    char b[4];
    REQUIRE(recv(p.fd, b, sizeof(b), 0) == 2);
    wsd_wake_release(false);
}

static void case_term_before_wait(void)
{
    struct pair p = connect_pair();
    queue_term(getpid(), 0x1234); /* pending while blocked, as when it comes between waits */
    REQUIRE(!wsd_wake_arm(p.fd, 0)); /* the mask opened, the handler caught it */
    recv_ends_empty(&p);
    expect_caught(SI_QUEUE, getpid(), 0x1234);
    arm(&p, 0); /* taken: the wait can start again */
    REQUIRE(send(p.peer, "x", 1, 0) == 1);
    char b;
    REQUIRE(recv(p.fd, &b, 1, 0) == 1 && b == 'x');
    /* going to epoll: SIGTERM is the signalfd's again */
    REQUIRE(!wsd_wake_pause());
    queue_term(getpid(), 0x4321);
    REQUIRE(!wsd_wake_term_caught());
    expect_in_signalfd(&p, SI_QUEUE, getpid(), 0x4321);
    wsd_wake_release(false);
}

static void case_term_during_wait(void)
{
    struct pair p = connect_pair();
    pid_t self = getpid();
    arm(&p, 0);
    pid_t sender = fork();
    REQUIRE(sender >= 0);
    if (sender == 0) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL); /* long enough that recv() is waiting */
        union sigval v = {.sival_int = 0x5678};
        _exit(sigqueue(self, SIGTERM, v) == 0 ? 0 : 1);
    }
    recv_ends_empty(&p);
    int status;
    REQUIRE(waitpid(sender, &status, 0) == sender && status == 0);
    expect_caught(SI_QUEUE, sender, 0x5678);
    wsd_wake_release(false);
}

static void case_term_during_epoll(void)
{
    struct pair p = connect_pair();
    pid_t self = getpid();
    arm(&p, 0);
    REQUIRE(!wsd_wake_pause()); /* the connection's output backed up: an epoll wait next */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    REQUIRE(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, p.sig_fd, &ev) == 0);
    pid_t sender = fork();
    REQUIRE(sender >= 0);
    if (sender == 0) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        union sigval v = {.sival_int = 0x9abc};
        _exit(sigqueue(self, SIGTERM, v) == 0 ? 0 : 1);
    }
    int n;
    do /* the handler's run may end a first wait early (EINTR) */
        n = epoll_wait(ep, &ev, 1, WATCHDOG_MS);
    while (n < 0 && errno == EINTR);
    REQUIRE(n == 1); /* woken by the signalfd */
    int status;
    REQUIRE(waitpid(sender, &status, 0) == sender && status == 0);
    REQUIRE(!wsd_wake_term_caught());
    expect_in_signalfd(&p, SI_QUEUE, sender, 0x9abc);
    arm(&p, 0); /* SIGTERM unblocked again for the next recv() wait */
    REQUIRE(kill(getpid(), SIGTERM) == 0);
    expect_caught(SI_USER, getpid(), 0);
    wsd_wake_release(false);
}

static void case_plain_kill(void)
{
    struct pair p = connect_pair();
    arm(&p, 0);
    REQUIRE(kill(getpid(), SIGTERM) == 0); /* delivered before this returns */
    recv_ends_empty(&p);                    /* so this recv() does not wait */
    REQUIRE(wsd_wake_pause());              /* caught before the epoll wait */
    expect_caught(SI_USER, getpid(), 0);
    wsd_wake_release(false);
}

static void case_release_returns_untaken(void)
{
    struct pair p = connect_pair();
    arm(&p, 0);
    queue_term(getpid(), 0x77); /* caught, never taken: the connection ended first */
    REQUIRE(wsd_wake_term_caught());
    wsd_wake_release(false);
    REQUIRE(!wsd_wake_term_caught());
    expect_in_signalfd(&p, SI_QUEUE, getpid(), 0x77); /* for the idle worker's wait */
    queue_term(getpid(), 0x78);                      /* and SIGTERM is blocked again */
    expect_in_signalfd(&p, SI_QUEUE, getpid(), 0x78);
}

/* Run a case in its own process (wake.c's state and the signal mask are per process); fail
 * if it fails or hangs. */
static void in_child(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = -1;
    for (int waited = 0; waited < WATCHDOG_MS; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        usleep(10 * 1000);
    }
    if (waitpid(pid, NULL, WNOHANG) == 0) { /* still running: hung */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the case hung");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define CASE_IN_CHILD(name)                                                                    \
    static void test_##name(void **state)                                                      \
    {                                                                                          \
        (void)state;                                                                           \
        in_child(case_##name);                                                                 \
    }

CASE_IN_CHILD(deadline)
CASE_IN_CHILD(term_before_wait)
CASE_IN_CHILD(term_during_wait)
CASE_IN_CHILD(term_during_epoll)
CASE_IN_CHILD(plain_kill)
CASE_IN_CHILD(release_returns_untaken)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_term_before_wait),
        cmocka_unit_test(test_term_during_wait),
        cmocka_unit_test(test_term_during_epoll),
        cmocka_unit_test(test_plain_kill),
        cmocka_unit_test(test_release_returns_untaken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
