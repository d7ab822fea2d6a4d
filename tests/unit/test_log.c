/*
 * Unit tests of the logger: levels, the text and JSON line formats, escaping, and long
 * messages. Each test points fd 2 at a temporary file and reads back what was written;
 * Criterion runs every test in its own process, so the process-wide level starts afresh.
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "relais/errors.h"
#include "relais/log.h"

struct capture {
    FILE *file;
    int saved_fd;
};

static struct capture capture_start(void)
{
    struct capture c;
    c.file = tmpfile();
    cr_assert_not_null(c.file);
    c.saved_fd = dup(STDERR_FILENO);
    cr_assert_geq(c.saved_fd, 0);
    cr_assert_geq(dup2(fileno(c.file), STDERR_FILENO), 0);
    return c;
}

/* Restores fd 2 and returns what was written, malloc'd. */
static char *capture_end(struct capture *c)
{
    dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    fseek(c->file, 0, SEEK_END);
    long size = ftell(c->file);
    rewind(c->file);
    char *text = calloc(1, (size_t)size + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)size, c->file), (size_t)size);
    fclose(c->file);
    return text;
}

static void expect_match(const char *text, const char *pattern)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0, "pattern %s", pattern);
    cr_expect_eq(regexec(&re, text, 0, NULL, 0), 0, "'%s' does not match %s", text, pattern);
    regfree(&re);
}

#define TS "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

static int evaluations;

static int counted(int v)
{
    evaluations++;
    return v;
}

Test(log, writes_a_text_line_with_utc_time_level_and_component)
{
    struct capture c = capture_start();
    RLOG(RELAIS_LOG_INFO, "broker", "accepted msg=%s from=%s", "0190-ab", "rpps:10101234567");
    RLOG(RELAIS_LOG_ERROR, "agent", "lost");
    char *text = capture_end(&c);
    expect_match(text, "^" TS " INFO  broker: accepted msg=0190-ab from=rpps:10101234567\n" TS
                       " ERROR agent: lost\n$");
    free(text);
}

Test(log, skips_lines_below_the_level_without_evaluating_arguments)
{
    struct capture c = capture_start();
    RLOG(RELAIS_LOG_DEBUG, "broker", "n=%d", counted(1));
    cr_expect_eq(evaluations, 0, "debug is off by default");
    relais_log_set_level(RELAIS_LOG_DEBUG);
    RLOG(RELAIS_LOG_DEBUG, "broker", "n=%d", counted(2));
    cr_expect_eq(evaluations, 1);
    relais_log_set_level(RELAIS_LOG_ERROR);
    RLOG(RELAIS_LOG_WARN, "broker", "n=%d", counted(3));
    char *text = capture_end(&c);
    expect_match(text, "^" TS " DEBUG broker: n=2\n$");
    free(text);
}

Test(log, parses_level_names)
{
    static const struct {
        const char *name;
        int rc;
        relais_log_level_t level;
    } cases[] = {{"error", 0, RELAIS_LOG_ERROR}, {"warn", 0, RELAIS_LOG_WARN},
                 {"info", 0, RELAIS_LOG_INFO},   {"debug", 0, RELAIS_LOG_DEBUG},
                 {"DEBUG", RELAIS_ECONFIG, 0},   {"trace", RELAIS_ECONFIG, 0},
                 {"", RELAIS_ECONFIG, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        relais_log_set_level(RELAIS_LOG_ERROR);
        cr_expect_eq(relais_log_set_level_name(cases[i].name), cases[i].rc, "'%s'", cases[i].name);
        if (cases[i].rc != 0) continue;
        cr_expect(relais_log_enabled(cases[i].level), "%s", cases[i].name);
        if (cases[i].level < RELAIS_LOG_DEBUG) {
            cr_expect_not(relais_log_enabled(cases[i].level + 1), "%s", cases[i].name);
        }
    }
    cr_expect_eq(relais_log_set_level_name(NULL), RELAIS_ECONFIG);
}

Test(log, writes_json_lines_with_escaped_strings)
{
    relais_log_set_json(true);
    struct capture c = capture_start();
    relais_log_write(RELAIS_LOG_WARN, "bro\"ker", "say \"hi\" \\ path\nnext\x01 é");
    char *text = capture_end(&c);
    expect_match(text, "^\\{\"ts\":\"" TS "\",\"level\":\"warn\",\"component\":\"bro\\\\\"ker\","
                       "\"msg\":\"say \\\\\"hi\\\\\" \\\\\\\\ path\\\\nnext\\\\u0001 é\"\\}\n$");
    free(text);
}

Test(log, json_lines_carry_the_key_value_pairs_as_fields_of_their_own)
{
    relais_log_set_json(true);
    struct capture c = capture_start();
    relais_log_write(RELAIS_LOG_INFO, "session", "opened agent=%s credit=%u why=\"%s\" msg=%s",
                     "rpps:10101234567", 32u, "silent for 3 intervals", "x");
    char *text = capture_end(&c);
    expect_match(text, "^\\{\"ts\":\"" TS "\",\"level\":\"info\",\"component\":\"session\","
                       "\"msg\":\"opened\",\"agent\":\"rpps:10101234567\",\"credit\":\"32\","
                       "\"why\":\"silent for 3 intervals\",\"f_msg\":\"x\"\\}\n$");
    free(text);
}

Test(log, keeps_one_line_per_call_when_a_message_holds_a_newline)
{
    struct capture c = capture_start();
    relais_log_write(RELAIS_LOG_INFO, "broker", "reason=%s", "bad\nINFO forged: line\r");
    char *text = capture_end(&c);
    expect_match(text, "^" TS " INFO  broker: reason=bad\\\\nINFO forged: line\\\\r\n$");
    free(text);
}

Test(log, truncates_a_long_message_but_keeps_the_line_whole)
{
    size_t n = 10000;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, '"', n);
    big[n] = '\0';
    for (int json = 0; json <= 1; json++) {
        relais_log_set_json(json);
        struct capture c = capture_start();
        relais_log_write(RELAIS_LOG_INFO, "broker", "%s", big);
        char *text = capture_end(&c);
        size_t len = strlen(text);
        cr_expect_lt(len, 4096, "json=%d: %zu bytes", json, len);
        cr_expect_gt(len, 1000, "json=%d", json);
        cr_expect_eq(strchr(text, '\n'), text + len - 1, "json=%d: one line", json);
        if (json) cr_expect_str_eq(text + len - 3, "\"}\n", "the JSON object is closed");
        free(text);
    }
    free(big);
}

/* A message of `quotes` double quotes then `chars` two-byte characters. */
static char *quotes_then_accents(size_t quotes, size_t chars)
{
    char *s = malloc(quotes + 2 * chars + 1);
    cr_assert_not_null(s);
    memset(s, '"', quotes);
    for (size_t i = 0; i < chars; i++) memcpy(s + quotes + 2 * i, "\xc3\xa9", 2);
    s[quotes + 2 * chars] = '\0';
    return s;
}

Test(log, does_not_cut_a_utf8_character_when_truncating)
{
    /*
     * Text mode cuts the formatted message; JSON mode, where each quote takes two bytes,
     * cuts the escaped line. With and without a one-byte pad, one of the two cuts of each
     * mode falls mid-character.
     */
    static const struct {
        bool json;
        size_t quotes;
        const char *pad;
    } cases[] = {{false, 0, ""}, {false, 0, "x"}, {true, 1030, ""}, {true, 1030, "x"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *msg = quotes_then_accents(cases[i].quotes, 2500 - cases[i].quotes);
        relais_log_set_json(cases[i].json);
        struct capture c = capture_start();
        relais_log_write(RELAIS_LOG_INFO, "b", "%s%s", cases[i].pad, msg);
        char *text = capture_end(&c);
        size_t len = strlen(text);
        size_t tail = cases[i].json ? 3 : 1; /* "}\n or \n */
        cr_assert_gt(len, tail + 2);
        cr_expect_eq((unsigned char)text[len - tail - 1], 0xa9,
                     "case %zu: the last character is complete", i);
        cr_expect_eq((unsigned char)text[len - tail - 2], 0xc3, "case %zu", i);
        free(text);
        free(msg);
    }
}
