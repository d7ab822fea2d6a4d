/*
 * relaisd as a service manager sees it: the notification protocol of systemd (READY=1 with a
 * STATUS= line once it serves, RELOADING=1 then READY=1 around a reload, STOPPING=1, and the
 * watchdog fed from the loop), and a reload that says what changed or why it failed —
 * `relaisctl reload`, which the unit's ExecReload runs, exits non-zero when the directory
 * does not load. The datagrams go to a socket of the test's own ($NOTIFY_SOCKET).
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define T 5000
#define NURSE "rpps:10109876543"

static rt_broker_t broker;
static int notify_fd = -1;
static char notify_path[108];

static void start(void)
{
    snprintf(notify_path, sizeof(notify_path), "/tmp/relais-notify-%d", (int)getpid());
    unlink(notify_path);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(notify_fd, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", notify_path);
    cr_assert_eq(bind(notify_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    setenv("NOTIFY_SOCKET", notify_path, 1);
    setenv("WATCHDOG_USEC", "400000", 1); /* a watchdog every 200 ms */
    memset(&broker, 0, sizeof(broker));
    static const char *args[] = {"--admin", "off", NULL};
    rt_suite_start(&broker, args);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
}

static void stop(void)
{
    if (broker.pid > 0) rt_suite_stop(&broker);
    rt_broker_cleanup(&broker);
    close(notify_fd);
    unlink(notify_path);
}

TestSuite(service, .init = start, .fini = stop, .timeout = 60);

/* Waits for a datagram holding needle; 0, or -1 after timeout_ms. */
static int expect_notify(const char *needle, int timeout_ms, char *out, size_t out_len)
{
    for (;;) {
        struct pollfd p = {.fd = notify_fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0) return -1;
        char buf[1024];
        ssize_t n = recv(notify_fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0) return -1;
        buf[n] = '\0';
        if (strstr(buf, needle) != NULL) {
            if (out != NULL) snprintf(out, out_len, "%s", buf);
            return 0;
        }
    }
}

static int ctl(char *out, size_t out_len, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s --data %s 2>&1", RELAISCTL_PATH, args, broker.data_dir);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, out_len - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(service, says_ready_with_its_status_feeds_the_watchdog_and_says_stopping)
{
    char msg[1024];
    cr_assert_eq(expect_notify("READY=1", T, msg, sizeof(msg)), 0, "READY=1 once it serves");
    cr_expect(strstr(msg, "STATUS=serving endpoint=tcp://") != NULL, "%s", msg);
    cr_expect_eq(expect_notify("WATCHDOG=1", T, NULL, 0), 0, "the watchdog is fed");
    cr_expect_eq(expect_notify("WATCHDOG=1", T, NULL, 0), 0, "again");
    cr_assert_eq(rt_broker_stop(&broker, 10000), 0);
    cr_expect_eq(expect_notify("STOPPING=1", T, NULL, 0), 0);
}

Test(service, a_reload_says_what_changed_and_fails_when_the_directory_does_not_load)
{
    static char out[4096];
    /* A revocation: the reload names the agent removed, and succeeds. */
    char path[400];
    snprintf(path, sizeof(path), "%s/territory.yaml", broker.data_dir);
    cr_assert_eq(rt_territory_revoke(&broker, NURSE, T), 0); /* by SIGHUP */
    cr_expect_eq(rt_broker_wait_log(&broker, "reload: removed agent=" NURSE, T), 0);
    cr_assert_eq(expect_notify("RELOADING=1", T, NULL, 0), 0);
    cr_assert_eq(ctl(out, sizeof out, "reload"), 0, "%s", out);
    cr_expect(strstr(out, "directory reloaded") != NULL, "%s", out);
    cr_expect(strstr(out, "added=0 removed=0 changed=0") != NULL, "nothing new: %s", out);
    /* A directory that does not load: the reload fails, and says why. */
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fputs("  - address: \"rpps:not-a-number\"\n    role: nurse\n", f);
    fclose(f);
    cr_expect_eq(ctl(out, sizeof out, "reload"), 1, "a reload that fails says so: %s", out);
    cr_expect(strstr(out, "reload refused") != NULL, "%s", out);
    char msg[1024];
    cr_expect_eq(expect_notify("STATUS=reload refused", T, msg, sizeof(msg)), 0,
                 "systemd's status shows it too");
}
