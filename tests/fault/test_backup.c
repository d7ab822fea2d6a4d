/*
 * relaisctl backup while the broker works, and relaisctl restore into a new data directory:
 * a broker started on the restored directory delivers every message that was accepted and
 * undelivered when the backup was taken, once and in order; the restored journal verifies;
 * a damaged backup and a data directory in use are refused.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define T 5000
#define A "staff:claire.martin@cabinet-dupont"
#define B "rpps:10101234567"

static int ctl(char *out, size_t out_len, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", RELAISCTL_PATH, args);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, out_len - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void copy(const char *from_dir, const char *to_dir, const char *name)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -p %s/%s %s/%s", from_dir, name, to_dir, name);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(backup, a_backup_taken_under_load_restores_every_undelivered_message, .timeout = 120)
{
    rt_broker_t broker;
    memset(&broker, 0, sizeof(broker));
    cr_assert_eq(rt_broker_start(&broker, NULL, 10000), 0);
    rt_client_t a = rt_session(&broker, A, 8);
    enum { BEFORE = 200, DURING = 200 };
    char text[32];
    for (int i = 0; i < BEFORE; i++) {
        rt_env_t e;
        snprintf(text, sizeof text, "m%04d", i);
        rt_env_note(&e, B, text);
        cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    }
    /* The backup runs in its own process while more submissions come in. */
    char dir[300], out[8192], args[1024];
    snprintf(dir, sizeof dir, "%s-backup", broker.data_dir);
    snprintf(args, sizeof args, "backup %s --data %s --directory %s/territory.yaml", dir,
             broker.data_dir, broker.data_dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", RELAISCTL_PATH, args);
    FILE *bk = popen(cmd, "r");
    cr_assert_not_null(bk);
    for (int i = BEFORE; i < BEFORE + DURING; i++) {
        rt_env_t e;
        snprintf(text, sizeof text, "m%04d", i);
        rt_env_note(&e, B, text);
        cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    }
    size_t n = fread(out, 1, sizeof out - 1, bk);
    out[n] = '\0';
    int st = pclose(bk);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "backup: %s", out);
    rt_client_close(&a);
    struct stat s;
    cr_assert_eq(stat(dir, &s), 0);
    cr_expect_eq(s.st_mode & 0777, 0700, "the backup directory is private");
    char path[400];
    snprintf(path, sizeof path, "%s/relais.db", dir);
    cr_assert_eq(stat(path, &s), 0);
    cr_expect_eq(s.st_mode & 0777, 0600);

    /* Restored into a new data directory, with the keys the host keeps (/etc/relais). */
    char restored[300];
    snprintf(restored, sizeof restored, "%s-restored", broker.data_dir);
    snprintf(args, sizeof args, "restore %s --data %s", dir, restored);
    cr_assert_eq(ctl(out, sizeof out, args), 0, "restore: %s", out);
    cr_expect(strstr(out, "ok:") != NULL, "the journal verifies: %s", out);
    rt_broker_stop(&broker, 10000);
    copy(broker.data_dir, restored, "broker.key");
    rt_broker_t again = broker; /* same keys and territory, new data directory */
    snprintf(again.data_dir, sizeof again.data_dir, "%.200s", restored);
    again.endpoint[0] = '\0';
    cr_assert_eq(rt_broker_start(&again, NULL, 10000), 0);
    rt_client_t b = rt_session(&again, B, 64);
    int got = 0;
    Relais__V1__Frame *d;
    while (rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, 1000, &d) == 0) {
        snprintf(text, sizeof text, "m%04d", got);
        cr_assert_str_eq(d->deliver->envelope->note->text, text, "once each, in order");
        rt_client_ack(&b, d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
        got++;
    }
    cr_expect_geq(got, BEFORE, "everything accepted before the backup began is in it");
    cr_expect_leq(got, BEFORE + DURING);
    cr_log_info("%d of %d messages in the backup", got, BEFORE + DURING);
    rt_client_close(&b);
    cr_assert_eq(rt_broker_stop(&again, 10000), 0);

    /* A second restore into the same directory, or from a damaged backup, is refused. */
    cr_expect_eq(ctl(out, sizeof out, args), 1, "not empty: %s", out);
    snprintf(path, sizeof path, "%s/audit.log", dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "x", 1), 1);
    close(fd);
    snprintf(args, sizeof args, "restore %s --data %s-other", dir, broker.data_dir);
    cr_expect_eq(ctl(out, sizeof out, args), 1, "damaged: %s", out);
    cr_expect(strstr(out, "does not match the manifest") != NULL, "%s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s-other", dir, restored, broker.data_dir);
    cr_expect_eq(system(cmd), 0);
    rt_broker_cleanup(&broker);
}

Test(backup, a_rotated_journal_is_backed_up_whole_and_verifies_as_one_chain, .timeout = 120)
{
    rt_broker_t broker;
    memset(&broker, 0, sizeof(broker));
    static const char *args[] = {"--audit-rotate-mb", "1", "--durability", "os", NULL};
    cr_assert_eq(rt_broker_start(&broker, args, 10000), 0);
    rt_client_t a = rt_session(&broker, A, 8);
    /* About 3,500 records: more than a MiB of journal. */
    for (int i = 0; i < 3500; i++) {
        rt_env_t e;
        rt_env_note(&e, B, "rotate");
        cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    }
    rt_client_close(&a);
    cr_assert_eq(rt_broker_wait_log(&broker, "rotated:", T), 0, "the journal was rotated");
    char dir[300], out[8192], cmdargs[1024];
    snprintf(dir, sizeof dir, "%s-backup", broker.data_dir);
    snprintf(cmdargs, sizeof cmdargs, "backup %s --data %s", dir, broker.data_dir);
    cr_assert_eq(ctl(out, sizeof out, cmdargs), 0, "%s", out);
    cr_assert_eq(rt_broker_stop(&broker, 10000), 0);
    char path[400];
    snprintf(path, sizeof path, "audit verify %s/audit.log", broker.data_dir);
    cr_assert_eq(ctl(out, sizeof out, path), 0, "%s", out);
    cr_expect(strstr(out, " files") != NULL, "one chain across the files: %s", out);
    char restored[300];
    snprintf(restored, sizeof restored, "%s-restored", broker.data_dir);
    snprintf(cmdargs, sizeof cmdargs, "restore %s --data %s", dir, restored);
    cr_assert_eq(ctl(out, sizeof out, cmdargs), 0, "%s", out);
    cr_expect(strstr(out, " files") != NULL, "the restored set verifies whole: %s", out);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, restored);
    cr_expect_eq(system(cmd), 0);
    rt_broker_cleanup(&broker);
}
