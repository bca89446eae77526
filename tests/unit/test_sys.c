/* SPDX-License-Identifier: MIT */
/* Proves wsd_sys_each_child against the kernel's own list: with enough children that
 * /proc/thread-self/children takes several 4 kB reads, every child is named once and nothing
 * else is; and a process without children names none. (This kernel ends each read on a whole
 * pid; the parser would also carry one cut between reads.) And the tick's clock against the
 * precise one: never ahead, never further behind than the slack run_deadlines allows. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/sys.h"

/* About 6 bytes a pid with pid_max 32768: twice the 4 kB piece the list is read in. */
#define CHILDREN 1400

struct seen {
    pid_t pids[CHILDREN + 16];
    size_t n;
};

static void collect(pid_t pid, void *arg)
{
    struct seen *s = arg;
    if (s->n < sizeof(s->pids) / sizeof(s->pids[0]))
        s->pids[s->n] = pid;
    s->n++;
}

static int by_value(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

static void test_each_child_none(void **state)
{
    struct seen s = {0};
    (void)state;
    assert_int_equal(wsd_sys_each_child(collect, &s), 0);
    assert_int_equal(s.n, 0);
}

static void test_each_child_names_every_child_once(void **state)
{
    static pid_t kids[CHILDREN];
    static struct seen s;
    (void)state;
    for (size_t i = 0; i < CHILDREN; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            pause(); /* until the SIGKILL below */
            _exit(0);
        }
        assert_true(kids[i] > 0);
    }
    int r = wsd_sys_each_child(collect, &s);
    for (size_t i = 0; i < CHILDREN; i++) /* end them before any assertion can return */
        (void)kill(kids[i], SIGKILL);
    for (size_t i = 0; i < CHILDREN; i++)
        (void)waitpid(kids[i], NULL, 0);
    assert_int_equal(r, 0);
    assert_int_equal(s.n, CHILDREN);
    qsort(kids, CHILDREN, sizeof(kids[0]), by_value);
    qsort(s.pids, CHILDREN, sizeof(s.pids[0]), by_value);
    assert_memory_equal(s.pids, kids, sizeof(kids));
}

/* Read around sleeps of every phase against the tick (0.1-5 ms), and busy, for 0.3 s. */
static void test_tick_ms_is_never_ahead_and_within_slack(void **state)
{
    (void)state;
    uint64_t last = 0, behind_max = 0, advanced = 0, late = 0;
    for (int i = 0; i < 600; i++) {
        uint64_t before = wsd_now_ms();
        uint64_t tick = wsd_tick_ms();
        uint64_t after = wsd_now_ms();
        assert_true(tick <= after);
        if (tick + WSD_TICK_SLACK_MS < before)
            late++; /* a tick can come late while this virtual CPU is not running */
        assert_true(tick >= last);
        if (tick > last && last != 0)
            advanced++;
        if (before - tick > behind_max && before > tick)
            behind_max = before - tick;
        last = tick;
        if (i % 3 != 0)
            usleep((useconds_t)(100 + (i * 37) % 4900));
    }
    assert_true(advanced > 10); /* it moves */
    assert_true(late <= 3);
    print_message("tick clock: at most %llu ms behind, %llu of 600 reads past the slack\n",
                  (unsigned long long)behind_max, (unsigned long long)late);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_child_none),
        cmocka_unit_test(test_each_child_names_every_child_once),
        cmocka_unit_test(test_tick_ms_is_never_ahead_and_within_slack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
