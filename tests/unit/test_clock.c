/*
 * Business time and transport time (proto/src/clock.c). RELAIS_SIM_CLOCK is read once per
 * process, and Criterion runs each test in a process of its own, so each test sets the
 * variable before its first clock call.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relais/codec.h"
#include "relais/errors.h"

Test(clock, unset_business_time_is_the_wall_clock)
{
    unsetenv("RELAIS_SIM_CLOCK");
    cr_assert_eq(relais_clock_init(), 0);
    cr_assert_eq(relais_clock_factor(), 1.0);
    int64_t wall = relais_wall_ms();
    int64_t now = relais_now_ms();
    cr_assert(now >= wall && now - wall < 1000, "now %lld wall %lld", (long long)now,
              (long long)wall);
    cr_assert_eq(relais_clock_real_delay_ms(2500), 2500);
    cr_assert_eq(relais_clock_real_delay_ms(-5), 0);
}

Test(clock, a_simulated_clock_runs_from_its_origin_at_its_factor)
{
    char v[96];
    int64_t origin = 1800000000000; /* a simulated calendar far from the real one */
    snprintf(v, sizeof v, "3600,%lld,%lld", (long long)relais_wall_ms(), (long long)origin);
    setenv("RELAIS_SIM_CLOCK", v, 1);
    cr_assert_eq(relais_clock_init(), 0);
    cr_assert_eq(relais_clock_factor(), 3600.0);
    int64_t now = relais_now_ms();
    /* At most a few real seconds since the origin: a few simulated hours. */
    cr_assert(now >= origin && now < origin + 4 * 3600 * 1000, "now %lld", (long long)now);
    /* Six simulated hours are six real seconds; a part of a millisecond rounds up. */
    cr_assert_eq(relais_clock_real_delay_ms(6 * 3600 * 1000), 6000);
    cr_assert_eq(relais_clock_real_delay_ms(1), 1);
    /* Transport time is never scaled. */
    int64_t m0 = relais_mono_ms(), w0 = relais_wall_ms();
    int64_t m1 = relais_mono_ms(), w1 = relais_wall_ms();
    cr_assert(m1 - m0 < 1000 && w1 - w0 < 1000);
}

Test(clock, a_malformed_variable_is_reported_and_the_wall_clock_kept)
{
    static const char *bad[] = {"fast", "0.5,1,1", "10,1", "10,1,1,1", "2000000,1,1", "10,-1,5"};
    int i = 0;
    /* Only the first read counts in a process: check one, the others in children. */
    for (i = 0; i < (int)(sizeof bad / sizeof bad[0]) - 1; i++) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) break;
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "variable '%s' accepted", bad[i]);
    }
    setenv("RELAIS_SIM_CLOCK", bad[i], 1);
    bool ok = relais_clock_init() == RELAIS_ECONFIG && relais_clock_factor() == 1.0 &&
              llabs(relais_now_ms() - relais_wall_ms()) < 1000;
    if (i < (int)(sizeof bad / sizeof bad[0]) - 1) _exit(ok ? 0 : 1);
    cr_assert(ok, "variable '%s' accepted", bad[i]);
}
