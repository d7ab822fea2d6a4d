/*
 * relais-hl7 with an MLLP client that is not ours: Debian's python3-hl7 `mllp_send`
 * (deploy/install-deps.sh installs it) sends a file of two discharges written with LF
 * segment ends (--loose), as an interface engineer would try a channel. Both are AA'd and
 * reach the GP's assistant.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_hl7_support.h"

#define MLLP_SEND "/usr/bin/mllp_send"

Test(hl7_mllp_send, a_file_sent_with_mllp_send_is_acknowledged_and_delivered, .timeout = 60)
{
    cr_assert_eq(access(MLLP_SEND, X_OK), 0,
                 MLLP_SEND " is missing: run deploy/install-deps.sh (python3-hl7)");
    rt_broker_t broker = {0};
    rt_suite_start(&broker, NULL);
    hl7_receiver_t assistant;
    cr_assert_eq(hl7_receiver_start(&assistant, &broker, HL7_ASSISTANT), 0);
    hl7_gwproc_t gw;
    cr_assert_eq(hl7_gw_start(&gw, &broker, NULL), 0);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "state=ready", 15000), 0);

    char path[400];
    snprintf(path, sizeof path, "%s/two-discharges.hl7", gw.dir);
    FILE *f = fopen(path, "w");
    const char *names[] = {"a03-lf.hl7", "a03-copd-pd1.hl7"};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *m = hl7_sample(names[i], &len);
        for (size_t k = 0; k < len; k++) {
            if (m[k] == '\r') m[k] = '\n';
        }
        fwrite(m, 1, len, f);
        free(m);
    }
    fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof cmd, MLLP_SEND " --loose -f %s -p %d 127.0.0.1", path, gw.port);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "mllp_send failed: %s", out);
    cr_assert(strstr(out, "MSA|AA|MSG-A03-0014") != NULL, "%s", out);
    cr_assert(strstr(out, "MSA|AA|MSG-A03-0002") != NULL, "%s", out);
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.discharges, 2, 15000), 0);

    cr_assert_eq(hl7_gw_stop(&gw), 0);
    hl7_gw_cleanup(&gw);
    hl7_receiver_stop(&assistant);
    rt_suite_stop(&broker);
}
