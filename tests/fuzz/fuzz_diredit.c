/*
 * Fuzz target: relaisctl's in-place edits of a territory directory (broker/ctl_agent_edit.c),
 * which locate the agents list and its entries in a file people wrote, with libyaml events,
 * and splice lines in and out.
 *
 * The input is the YAML text. An entry is added (ctl__dir_add), and the address of the
 * input's first loadable agent, if any, is removed (ctl__dir_remove); the first line of the
 * input also goes to ctl__identifier_check. Properties checked:
 *   - every call returns 0 or a documented code, a failure leaves no output, a success gives
 *     a NUL-terminated text of the announced length, and messages fit their buffers;
 *   - an add keeps the input: the output starts with the input's bytes up to the insertion
 *     point and ends with all the rest (except for the `agents: []` form, whose brackets go);
 *   - when the input is a loadable directory and the edited text loads too, the added agent
 *     is in it with its key and every other agent is still there; and removing that agent
 *     again gives back the input, byte for byte, when the input ends with a newline;
 *   - a removal that loads has one agent fewer, and no longer the one removed.
 */
#include <errno.h>

#include "directory.h"
#include "fuzz.h"
#include "relaisctl.h"

#define KEY "-JHuAcPxy.ZxdY.]87%jZw3*{**b&2rn91zgweaY" /* no [ in it: see check_add */
#define ADDRESS "app:fuzz-added-agent"

static directory_t *load(const char *text, size_t len)
{
    directory_t *d = NULL;
    char err[256];
    if (directory_parse(text, len, "fuzz.yaml", &d, err, sizeof err) != 0) return NULL;
    return d;
}

static void check_add(const char *text, size_t len, directory_t *before)
{
    ctl_entry_t e = {.comment = CTL_ENROLLED_COMMENT ", fuzz",
                     .address = ADDRESS,
                     .role = "app",
                     .public_key = KEY};
    char *out = NULL, err[300];
    size_t out_len = 0;
    int rc = ctl__dir_add(text, len, &e, &out, &out_len, err, sizeof err);
    FUZZ_CHECKF(rc == 0 || rc == RELAIS_ECONFIG || rc == -ENOMEM, "rc %d", rc);
    if (rc != 0) {
        FUZZ_CHECK(out == NULL);
        FUZZ_CHECK(fuzz_terminated(err, sizeof err));
        return;
    }
    FUZZ_CHECK(out != NULL && strlen(out) == out_len && out_len > len);
    /* The entry added has no brackets: only the `agents: []` form loses one. */
    size_t open_in = 0, open_out = 0;
    for (size_t i = 0; i < len; i++) open_in += text[i] == '[';
    for (size_t i = 0; i < out_len; i++) open_out += out[i] == '[';
    bool flow_empty = open_out < open_in;
    if (!flow_empty && memchr(text, '\0', len) == NULL) {
        size_t head = 0;
        while (head < len && out[head] == text[head]) head++;
        FUZZ_CHECKF(memcmp(out + out_len - (len - head), text + head, len - head) == 0,
                    "the add changed the input beyond the insertion point %zu", head);
    }
    directory_t *after = before != NULL ? load(out, out_len) : NULL;
    if (after != NULL && directory_lookup(before, ADDRESS) == NULL) {
        const dir_agent_t *a = directory_lookup(after, ADDRESS);
        FUZZ_CHECK(a != NULL && strcmp(a->public_key_z85, KEY) == 0);
        FUZZ_CHECK(directory_agent_count(after) == directory_agent_count(before) + 1);
        for (size_t i = 0; i < directory_agent_count(before); i++)
            FUZZ_CHECK(directory_lookup(after, directory_agent_at(before, i)->address) != NULL);
        char *back = NULL;
        size_t back_len = 0;
        rc = ctl__dir_remove(out, out_len, ADDRESS, &back, &back_len, err, sizeof err);
        FUZZ_CHECKF(rc == 0, "the added agent cannot be removed: %s", err);
        if (!flow_empty && len > 0 && text[len - 1] == '\n' && memchr(text, '\0', len) == NULL)
            FUZZ_CHECKF(back_len == len && memcmp(back, text, len) == 0,
                        "add then remove changed the file");
        free(back);
    }
    directory_destroy(&after);
    free(out);
}

static void check_remove(const char *text, size_t len, directory_t *before)
{
    if (before == NULL || directory_agent_count(before) == 0) return;
    const char *address = directory_agent_at(before, 0)->address;
    char *out = NULL, err[300];
    size_t out_len = 0;
    int rc = ctl__dir_remove(text, len, address, &out, &out_len, err, sizeof err);
    FUZZ_CHECKF(rc == 0 || rc == RELAIS_ECONFIG || rc == -ENOMEM, "rc %d", rc);
    if (rc != 0) {
        FUZZ_CHECK(out == NULL && fuzz_terminated(err, sizeof err));
        return;
    }
    FUZZ_CHECK(out != NULL && strlen(out) == out_len);
    directory_t *after = load(out, out_len);
    if (after != NULL) {
        FUZZ_CHECK(directory_lookup(after, address) == NULL ||
                   directory_agent_count(after) == directory_agent_count(before));
        if (directory_lookup(after, address) == NULL)
            FUZZ_CHECK(directory_agent_count(after) + 1 == directory_agent_count(before));
    }
    directory_destroy(&after);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0;
    char *text = malloc(size + 1);
    if (text == NULL) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    char line[128], why[300];
    size_t n = strcspn(text, "\n");
    snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), text);
    int rc = ctl__identifier_check(line, why, sizeof why);
    FUZZ_CHECK(rc == 0 || (rc == RELAIS_ECONFIG && fuzz_terminated(why, sizeof why)));
    if (rc == 0) FUZZ_CHECK(relais_address_valid(line));

    directory_t *before = load(text, size);
    check_add(text, size, before);
    check_remove(text, size, before);
    directory_destroy(&before);
    free(text);
    return 0;
}
