/*
 * relaisctl status|agents|sessions|mailboxes|message ID|deadletters|escalations|atrisk,
 * and the actions kick ADDRESS, replay ID and purge --older-than D:
 * questions and actions to the running broker, asked over its control socket
 * (DATA/relaisd.sock, mode 0600, so only the broker's user — or root — may ask).
 *
 * The socket speaks the admin listener's HTTP/1.1 and serves the same /api/v1/ handlers
 * (broker/admin/api.c), which render either JSON (--json) or the aligned tables printed
 * here by default: relaisctl only carries the question and prints the answer, so the
 * command, the API and the dashboard can never disagree.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "relaisctl.h"

#define TIMEOUT_MS 10000

static void usage(FILE *out, const char *cmd)
{
    fprintf(out,
            "usage: relaisctl %s [--data DIR | --socket PATH] [--json]%s\n"
            "  --data DIR      the broker's data directory (default: $RELAIS_DATA, else\n"
            "                  relais-data); its control socket is DIR/relaisd.sock\n"
            "  --socket PATH   the control socket itself\n"
            "  --json          JSON instead of a table\n"
            "%s",
            cmd,
            strcmp(cmd, "message") == 0 || strcmp(cmd, "replay") == 0 ? " MESSAGE_ID"
            : strcmp(cmd, "kick") == 0                                  ? " ADDRESS"
            : strcmp(cmd, "purge") == 0 ? " --older-than DURATION (30d, 12h, 90m, 45s)"
            : strcmp(cmd, "mailboxes") == 0 || strcmp(cmd, "deadletters") == 0
                ? " [--limit N] [--next CURSOR]"
                : "",
            strcmp(cmd, "mailboxes") == 0 || strcmp(cmd, "deadletters") == 0
                ? "  --limit N       rows per page (1 to 1000, default 100)\n"
                  "  --next CURSOR   the page after the one that printed (more: --next …)\n"
                : "");
}

static void append(char *out, size_t out_len, const char *s)
{
    size_t o = strlen(out);
    snprintf(out + o, out_len - o, "%s", s);
}

/* Appends s percent-encoded (everything but unreserved characters) to out. */
static void encode(char *out, size_t out_len, const char *s)
{
    size_t o = strlen(out);
    for (; *s && o + 64 < out_len; s++) { /* leaves room for the query appended after */
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, out_len - o, "%%%02X", c);
    }
    out[o] = '\0';
}

/* Sends GET (or POST, for a write action) target over the socket and returns the whole answer
 * (caller frees), or NULL with the reason printed. */
static char *ask(const char *path, const char *method, const char *target)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "relaisctl: socket path too long: %s\n", path);
        return NULL;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr,
                "relaisctl: cannot reach relaisd at %s: %s (is it running, with this "
                "data directory, and are you its user?)\n",
                path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    char req[2048];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: relaisd\r\n\r\n", method, target);
    if (n < 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "relaisctl: cannot send the request\n");
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, TIMEOUT_MS) <= 0) {
            fprintf(stderr, "relaisctl: relaisd did not answer within %d s\n", TIMEOUT_MS / 1000);
            free(buf);
            buf = NULL;
            break;
        }
        if (len + 4096 > cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    if (buf) buf[len] = '\0';
    return buf;
}

int ctl__live(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"limit", required_argument, NULL, 'l'},
        {"next", required_argument, NULL, 'n'},
        {"older-than", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = getenv("RELAIS_DATA"), *sock = NULL, *limit = NULL, *next = NULL,
               *older = NULL;
    bool json = false;
    bool paged = strcmp(cmd, "mailboxes") == 0 || strcmp(cmd, "deadletters") == 0;
    bool limited = paged || strcmp(cmd, "atrisk") == 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 's':
            sock = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'l':
            limit = optarg;
            break;
        case 'n':
            next = optarg;
            break;
        case 'o':
            older = optarg;
            break;
        case 'h':
            usage(stdout, cmd);
            return 0;
        default:
            usage(stderr, cmd);
            return 2;
        }
    }
    bool is_kick = strcmp(cmd, "kick") == 0, is_replay = strcmp(cmd, "replay") == 0;
    bool is_purge = strcmp(cmd, "purge") == 0, is_reload = strcmp(cmd, "reload") == 0;
    bool is_message = strcmp(cmd, "message") == 0 || is_kick || is_replay;
    long long older_ms = -1;
    if (older != NULL) {
        char *end;
        double v = strtod(older, &end);
        double unit = strcmp(end, "d") == 0   ? 86400e3
                      : strcmp(end, "h") == 0 ? 3600e3
                      : strcmp(end, "m") == 0 ? 60e3
                      : strcmp(end, "s") == 0 ? 1e3
                                              : -1;
        if (end == older || unit < 0 || v < 0) {
            fprintf(stderr, "relaisctl: --older-than wants a duration such as 30d, 12h, 90m "
                            "or 45s, got '%s'\n",
                    older);
            return 2;
        }
        older_ms = (long long)(v * unit);
    }
    if ((is_message && optind != argc - 1) || (!is_message && optind != argc) ||
        (!limited && limit) || (!paged && next) || (is_purge != (older != NULL))) {
        usage(stderr, cmd);
        return 2;
    }
    char path[512];
    if (sock)
        snprintf(path, sizeof(path), "%s", sock);
    else
        snprintf(path, sizeof(path), "%s/relaisd.sock", data ? data : "relais-data");

    char target[1024] = "/api/v1/";
    if (is_message) {
        append(target, sizeof(target), is_kick ? "kick/" : is_replay ? "replay/" : "messages/");
        encode(target, sizeof(target), argv[optind]);
    } else {
        append(target, sizeof(target), cmd);
    }
    append(target, sizeof(target), json ? "?format=json" : "?format=text");
    if (is_purge) {
        char ms[48];
        snprintf(ms, sizeof(ms), "&older_than_ms=%lld", older_ms);
        append(target, sizeof(target), ms);
    }
    if (limit) {
        append(target, sizeof(target), "&limit=");
        encode(target, sizeof(target), limit);
    }
    if (next) {
        append(target, sizeof(target), strcmp(cmd, "deadletters") == 0 ? "&before=" : "&after=");
        encode(target, sizeof(target), next);
    }
    char *resp = ask(path, is_kick || is_replay || is_purge || is_reload ? "POST" : "GET", target);
    if (resp == NULL) return 1;
    int status = 0;
    char *body = strstr(resp, "\r\n\r\n");
    if (sscanf(resp, "HTTP/1.1 %d", &status) != 1 || body == NULL) {
        fprintf(stderr, "relaisctl: relaisd's answer is not HTTP\n");
        free(resp);
        return 1;
    }
    body += 4;
    if (status == 200) {
        fputs(body, stdout);
    } else {
        /* The broker's own reason: "404 Not Found: no message with this id …". */
        fprintf(stderr, "relaisctl: %s", body);
    }
    free(resp);
    return status == 200 ? 0 : 1;
}
