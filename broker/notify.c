/*
 * systemd's notification protocol, without libsystemd: a datagram to $NOTIFY_SOCKET (a path,
 * or an abstract socket when it starts with '@'). relaisd says READY=1 once it serves,
 * STATUS= what it does, RELOADING=1 / READY=1 around a directory reload, STOPPING=1 when it
 * stops, and WATCHDOG=1 from its loop's tick when the unit asks for a watchdog
 * (WatchdogSec=, WATCHDOG_USEC): a loop that stops turning gets the broker restarted.
 * Without $NOTIFY_SOCKET (not under systemd) every call does nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker.h"
#include "relais/log.h"

int notify__send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0') return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) return -EINVAL;
    memcpy(addr.sun_path, path, n);
    if (path[0] == '@') addr.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
    int rc = sent < 0 ? -errno : 0;
    close(fd);
    if (rc < 0) RLOG(RELAIS_LOG_WARN, "broker", "cannot notify systemd: %s", relais_strerror(rc));
    return rc;
}

void notify__status(broker_t *b, const char *problem)
{
    char msg[600];
    if (problem != NULL)
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%.500s", problem);
    else
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving endpoint=%s sessions=%zu", b->endpoint,
                 map_count(b->sessions));
    notify__send(msg);
}

int64_t notify__watchdog_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    if (usec == NULL) return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid != NULL && atol(pid) != (long)getpid()) return 0;
    long long us = atoll(usec);
    return us > 0 ? us / 2000 : 0; /* every half interval, as sd_watchdog_enabled advises */
}
