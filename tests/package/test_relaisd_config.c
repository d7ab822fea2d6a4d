/*
 * The reader of relaisd.yaml (broker/relaisd_config.c): settings become the options they
 * stand for, in file order with their lines; everything it refuses names the line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "relais/errors.h"
#include "relaisd_config.h"

static char err[512];

static int parse(const char *text, relaisd_config_t *c)
{
    return relaisd_config_parse(text, strlen(text), "relaisd.yaml", c, err, sizeof err);
}

Test(relaisd_config, settings_become_the_options_they_stand_for)
{
    relaisd_config_t c;
    cr_assert_eq(parse("# comment\nbind: tcp://0.0.0.0:7400\ncurve_key: \"/etc/relais/b.key\"\n"
                       "insecure: false\nlog_json: true\nheartbeat_ms: 2000\n",
                       &c),
                 0, "%s", err);
    cr_assert_eq(c.n, 4);
    cr_expect_str_eq(c.settings[0].option, "--bind=tcp://0.0.0.0:7400");
    cr_expect_eq(c.settings[0].line, 2);
    cr_expect_str_eq(c.settings[1].option, "--curve-key=/etc/relais/b.key");
    cr_expect_str_eq(c.settings[2].option, "--log-json");
    cr_expect_str_eq(c.settings[3].option, "--heartbeat-ms=2000");
    cr_expect_eq(c.settings[3].line, 6);
    relaisd_config_free(&c);
    cr_expect_eq(c.n, 0);
}

Test(relaisd_config, an_empty_file_is_an_empty_configuration)
{
    relaisd_config_t c;
    cr_expect_eq(parse("", &c), 0, "%s", err);
    cr_expect_eq(c.n, 0);
    cr_expect_eq(parse("# only comments\n", &c), 0, "%s", err);
    cr_expect_eq(c.n, 0);
}

static void refused(const char *text, const char *want)
{
    relaisd_config_t c;
    cr_expect_eq(parse(text, &c), RELAIS_ECONFIG, "accepted: %s", text);
    cr_expect_eq(c.n, 0);
    cr_expect(strstr(err, want) != NULL, "'%s' lacks '%s'", err, want);
}

Test(relaisd_config, mistakes_are_refused_with_their_line)
{
    refused("bind: a\nhartbeat_ms: 5\n", "relaisd.yaml:2: unknown key 'hartbeat_ms'");
    refused("bind: a\ndata: b\nbind: c\n", "relaisd.yaml:3: bind: given twice");
    refused("insecure: yes\n", "relaisd.yaml:1: insecure: wants true or false");
    refused("insecure: \"true\"\n", "insecure: wants true or false");
    refused("data:\n", "relaisd.yaml:1: data: has no value");
    refused("bind:\n  - a\n", "relaisd.yaml:2: bind: wants a single value, not a list");
    refused("bind: {a: b}\n", "bind: wants a single value, not a mapping");
    refused("bind: &x a\ndata: *x\n", "anchors");
    refused("bind: a\n---\ndata: b\n", "relaisd.yaml:2: a second document");
    refused("- bind\n", "the file must be a mapping");
    refused("just text\n", "the file must be a mapping");
    refused("bind: \"unterminated\n", "not valid YAML");
    /* A "\0" escape puts a NUL inside the scalar: the option would be cut short there. */
    refused("heartbeat_ms: \"\\00\"\n", "relaisd.yaml:1: heartbeat_ms: holds a NUL");
    refused("\"data\\0x\": b\n", "relaisd.yaml:1: a key holds a NUL");
}

Test(relaisd_config, a_missing_file_is_an_errno)
{
    relaisd_config_t c;
    cr_expect_eq(relaisd_config_load("/nonexistent/relaisd.yaml", &c, err, sizeof err), -ENOENT);
    cr_expect(strstr(err, "/nonexistent/relaisd.yaml") != NULL, "%s", err);
}
