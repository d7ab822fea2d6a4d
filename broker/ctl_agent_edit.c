/*
 * Editing a territory directory as text, for relaisctl agent add and revoke.
 *
 * A CPTS's directory is a file people write and comment ("# the GP's assistant, who books
 * for her"), so the enrolment commands must change one entry and leave every other byte as
 * it was: a YAML library that loads and re-emits the file would drop the comments and
 * reformat the rest. So these functions find, with libyaml's event parser, where the
 * `agents:` list and each of its entries sit in the text (lines, columns), and splice lines
 * in or out. They never judge the result: the caller loads the edited text with the
 * broker's own loader (directory_parse) and writes it only if the loader accepts it.
 *
 * Also here: the check digits of RPPS and FINESS numbers (ctl__identifier_check).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "relais/codec.h"
#include "relais/errors.h"
#include "relaisctl.h"

/* Where the agents list is, as parse_layout() finds it. Lines are 0-based. */
typedef struct layout {
    bool has_agents;       /* a top-level `agents:` key exists */
    bool agents_flow;      /* its value is a flow sequence ([…]) */
    bool agents_scalar;    /* its value is empty (null): `agents:` and nothing under it */
    size_t agents_line;    /* line of the `agents` key */
    size_t n_items;        /* entries in the list */
    size_t first_dash_col; /* column of the first entry's '-' */
    size_t last_end_line;  /* last line holding content of the last entry */
    size_t last_dash_line; /* line of the last entry's '-' */
    /* The entry whose address was asked for (want), when found: */
    bool found;
    size_t found_dash_line;
    size_t found_end_line;
} layout_t;

/* Entries of a flow list (`agents: [{…}, {…}]`) share lines; they are never edited. */
static bool is_flow_list_item(const layout_t *lo)
{
    return lo->agents_flow;
}

static int set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return RELAIS_ECONFIG;
}

/* Offset in text of the start of line `line` (0-based), or len past the end. */
static size_t line_offset(const char *text, size_t len, size_t line)
{
    size_t off = 0;
    for (size_t l = 0; l < line && off < len; off++)
        if (text[off] == '\n') l++;
    return off;
}

/* Offset just past the end of line `line`, its newline included. */
static size_t line_end_offset(const char *text, size_t len, size_t line)
{
    size_t off = line_offset(text, len, line);
    while (off < len && text[off] != '\n') off++;
    return off < len ? off + 1 : len;
}

/*
 * Byte offset of a libyaml mark. Its index and column count characters, not bytes, so a
 * name with an accent before the mark would shift a byte offset taken from them: the line
 * is found by counting newlines and the column by stepping over UTF-8 characters.
 */
static size_t mark_offset(const char *text, size_t len, yaml_mark_t m)
{
    size_t off = line_offset(text, len, m.line);
    for (size_t c = 0; c < m.column && off < len && text[off] != '\n'; c++) {
        off++;
        while (off < len && ((unsigned char)text[off] & 0xC0) == 0x80) off++;
    }
    return off;
}

/* The '-' that opens the block-sequence entry whose content starts at offset pos. */
static size_t dash_before(const char *text, size_t pos, size_t *line_out, size_t *col_out)
{
    size_t i = pos;
    while (i > 0 && text[i - 1] != '-') i--;
    size_t dash = i > 0 ? i - 1 : 0, line = 0, col = 0;
    for (size_t k = 0; k < dash; k++) {
        if (text[k] == '\n') {
            line++;
            col = 0;
        } else {
            col++;
        }
    }
    *line_out = line;
    *col_out = col;
    return dash;
}

/*
 * Walks the YAML events of text and fills *lo. want, when not NULL, is the address of an
 * entry to locate. Returns 0 or RELAIS_ECONFIG with err set (not YAML at all: the caller
 * reports the loader's error instead, which names the line).
 */
static int parse_layout(const char *text, size_t len, const char *want, layout_t *lo, char *err,
                        size_t err_len)
{
    memset(lo, 0, sizeof *lo);
    /* The edits are text: a NUL byte would end the result early (and is no YAML). */
    const char *nul = memchr(text, '\0', len);
    if (nul != NULL)
        return set_err(err, err_len, "the directory holds a NUL byte (at offset %zu): not a "
                                     "text file", (size_t)(nul - text));
    /* YAML also breaks lines at a lone CR, NEL, LS and PS; the edits count lines by '\n',
     * so a file with those is refused rather than cut at the wrong place. */
    size_t line = 1;
    for (size_t i = 0; i < len; i++) {
        const unsigned char *u = (const unsigned char *)text + i;
        if (*u == '\n') line++;
        bool lone_cr = *u == '\r' && (i + 1 == len || u[1] != '\n');
        bool nel = *u == 0xC2 && i + 1 < len && u[1] == 0x85;
        bool ls_ps = *u == 0xE2 && i + 2 < len && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9);
        if (lone_cr || nel || ls_ps)
            return set_err(err, err_len,
                           "line %zu: a line break other than \\n or \\r\\n; save the file "
                           "with ordinary line ends",
                           line);
    }
    yaml_parser_t parser;
    yaml_event_t ev;
    if (!yaml_parser_initialize(&parser)) return set_err(err, err_len, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    /* depth counts open collections; flow[] says which of them are in flow style. */
    bool flow[64] = {false};
    int depth = 0, rc = 0;
    int agents_depth = -1;    /* depth of the agents sequence once inside it */
    bool top_key_next = true; /* next scalar at depth 1 is a key of the top mapping */
    bool value_is_agents = false;
    int item_key_state = 0; /* in an entry at agents_depth+1: 0 key next, 1 value next */
    bool item_key_is_address = false, item_matches = false;
    size_t item_dash_line = 0, item_end_line = 0;

    for (bool done = false; !done;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = set_err(err, err_len, "line %zu: %s", parser.problem_mark.line + 1,
                         parser.problem ? parser.problem : "not YAML");
            break;
        }
        size_t sline = ev.start_mark.line, eline = ev.end_mark.line;
        bool in_agents = agents_depth >= 0 && depth > agents_depth;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            bool is_flow = ev.type == YAML_SEQUENCE_START_EVENT
                               ? ev.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                               : ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
            if (depth == 1 && value_is_agents) {
                value_is_agents = false;
                if (ev.type != YAML_SEQUENCE_START_EVENT) {
                    rc = set_err(err, err_len, "line %zu: agents: must be a list", sline + 1);
                    done = true;
                    break;
                }
                lo->agents_flow = is_flow;
                agents_depth = depth + 1;
            } else if (depth == 1) {
                top_key_next = true; /* a nested value of another top-level key */
            }
            if (agents_depth >= 0 && depth == agents_depth && ev.type == YAML_MAPPING_START_EVENT) {
                /* A new entry of the agents list. */
                size_t col, prev_end = item_end_line;
                dash_before(text, mark_offset(text, len, ev.start_mark), &item_dash_line, &col);
                /* Line-based edits need each entry to start on a line of its own, below
                 * `agents:`; the block style every example uses does. */
                if (!is_flow_list_item(lo) && (item_dash_line <= lo->agents_line ||
                                               (lo->n_items > 0 && item_dash_line <= prev_end))) {
                    rc = set_err(err, err_len,
                                 "line %zu: write each agent's entry from a line of its own "
                                 "('- address: …' under agents:)",
                                 sline + 1);
                    done = true;
                    break;
                }
                if (lo->n_items == 0) lo->first_dash_col = col;
                lo->n_items++;
                item_end_line = sline;
                item_key_state = 0;
                item_matches = false;
            }
            if (in_agents && is_flow) item_end_line = eline;
            if (depth >= (int)(sizeof flow / sizeof flow[0]) - 1) {
                rc = set_err(err, err_len, "line %zu: nested too deeply", sline + 1);
                done = true;
                break;
            }
            flow[++depth] = is_flow;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            /* A block collection's end mark is the next token, maybe lines later: only a
             * flow collection's closing bracket is content. */
            if (in_agents && flow[depth]) item_end_line = eline;
            depth--;
            if (agents_depth >= 0 && depth == agents_depth && ev.type == YAML_MAPPING_END_EVENT) {
                lo->last_dash_line = item_dash_line;
                lo->last_end_line = item_end_line;
                if (item_matches && !lo->found) {
                    lo->found = true;
                    lo->found_dash_line = item_dash_line;
                    lo->found_end_line = item_end_line;
                }
            }
            if (agents_depth >= 0 && depth < agents_depth) agents_depth = -2; /* list closed */
            if (depth == 1) top_key_next = true;
            break;
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            if (depth == 1) {
                if (top_key_next) {
                    if (strcmp(v, "agents") == 0) {
                        if (lo->has_agents) {
                            rc = set_err(err, err_len, "line %zu: agents: declared twice",
                                         sline + 1);
                            done = true;
                            break;
                        }
                        lo->has_agents = true;
                        lo->agents_line = sline;
                        value_is_agents = true;
                    }
                    top_key_next = false;
                } else {
                    if (value_is_agents) {
                        value_is_agents = false;
                        if (v[0] != '\0' && strcmp(v, "~") != 0 && strcmp(v, "null") != 0) {
                            rc = set_err(err, err_len, "line %zu: agents: must be a list",
                                         sline + 1);
                            done = true;
                            break;
                        }
                        lo->agents_scalar = true;
                    }
                    top_key_next = true;
                }
            }
            if (in_agents) {
                item_end_line = eline;
                if (agents_depth >= 0 && depth == agents_depth + 1) {
                    if (item_key_state == 0) {
                        item_key_is_address = strcmp(v, "address") == 0;
                        item_key_state = 1;
                    } else {
                        if (item_key_is_address && want != NULL && strcmp(v, want) == 0)
                            item_matches = true;
                        item_key_state = 0;
                    }
                }
            }
            break;
        }
        case YAML_ALIAS_EVENT:
            if (in_agents) item_end_line = eline;
            break;
        default:
            break;
        }
        /* A collection as an entry's value also completes a key/value pair. */
        if (agents_depth >= 0 && depth == agents_depth + 1 && ev.type == YAML_SEQUENCE_END_EVENT)
            item_key_state = 0;
        if (agents_depth >= 0 && depth == agents_depth + 1 && ev.type == YAML_MAPPING_END_EVENT)
            item_key_state = 0;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* Appends a double-quoted YAML scalar of s to buf. Refuses control characters. */
static int quote(char *buf, size_t cap, size_t *pos, const char *s, const char *what, char *err,
                 size_t err_len)
{
    if (*pos + 1 >= cap) return set_err(err, err_len, "entry too long");
    buf[(*pos)++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return set_err(err, err_len, "%s holds a control character", what);
        if (*pos + 3 >= cap) return set_err(err, err_len, "entry too long");
        if (*p == '"' || *p == '\\') buf[(*pos)++] = '\\';
        buf[(*pos)++] = (char)*p;
    }
    buf[(*pos)++] = '"';
    buf[*pos] = '\0';
    return 0;
}

static int append(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *pos) return -ENOSPC;
    *pos += (size_t)n;
    return 0;
}

int ctl__entry_format(const ctl_entry_t *e, size_t indent, char *buf, size_t cap, char *err,
                      size_t err_len)
{
    size_t pos = 0;
    char pad[64];
    if (indent > 40) indent = 40;
    memset(pad, ' ', indent);
    pad[indent] = '\0';
    buf[0] = '\0';
    int rc = 0;
    if (e->comment != NULL && e->comment[0] != '\0')
        rc |= append(buf, cap, &pos, "%s# %s\n", pad, e->comment);
    rc |= append(buf, cap, &pos, "%s- address: ", pad);
    if (rc == 0) rc = quote(buf, cap, &pos, e->address, "address", err, err_len);
    if (rc == 0 && e->name != NULL && e->name[0] != '\0') {
        rc = append(buf, cap, &pos, "\n%s  name: ", pad);
        if (rc == 0) rc = quote(buf, cap, &pos, e->name, "name", err, err_len);
    }
    if (rc == 0) rc = append(buf, cap, &pos, "\n%s  role: %s", pad, e->role);
    if (rc == 0 && e->specialty != NULL && e->specialty[0] != '\0') {
        rc = append(buf, cap, &pos, "\n%s  specialty: ", pad);
        if (rc == 0) rc = quote(buf, cap, &pos, e->specialty, "specialty", err, err_len);
    }
    if (rc == 0 && e->public_key != NULL) {
        rc = append(buf, cap, &pos, "\n%s  public_key: ", pad);
        if (rc == 0) rc = quote(buf, cap, &pos, e->public_key, "public key", err, err_len);
    }
    const char *const *lists[2] = {e->pools, e->acts_for};
    const size_t counts[2] = {e->n_pools, e->n_acts_for};
    const char *names[2] = {"pools", "acts_for"};
    for (int l = 0; l < 2 && rc == 0; l++) {
        if (counts[l] == 0) continue;
        rc = append(buf, cap, &pos, "\n%s  %s: [", pad, names[l]);
        for (size_t i = 0; i < counts[l] && rc == 0; i++) {
            if (i > 0) rc = append(buf, cap, &pos, ", ");
            if (rc == 0) rc = quote(buf, cap, &pos, lists[l][i], names[l], err, err_len);
        }
        if (rc == 0) rc = append(buf, cap, &pos, "]");
    }
    if (rc == 0) rc = append(buf, cap, &pos, "\n");
    if (rc == -ENOSPC) return set_err(err, err_len, "entry too long");
    return rc;
}

/* Builds out = text[0, cut_at) + insert + text[resume_at, len). */
static int splice(const char *text, size_t len, size_t cut_at, const char *insert, size_t resume_at,
                  char **out, size_t *out_len, char *err, size_t err_len)
{
    /* The positions come from the layout; a layout this file did not foresee must fail
     * the edit, never read or write out of bounds. */
    if (cut_at > resume_at || resume_at > len)
        return set_err(err, err_len,
                       "the file's layout is not one relaisctl can edit: edit "
                       "it by hand (deploy/territory/README.md)");
    size_t ins = insert ? strlen(insert) : 0;
    size_t n = cut_at + ins + (len - resume_at);
    char *s = malloc(n + 1);
    if (s == NULL) return -ENOMEM;
    memcpy(s, text, cut_at);
    if (ins) memcpy(s + cut_at, insert, ins);
    memcpy(s + cut_at + ins, text + resume_at, len - resume_at);
    s[n] = '\0';
    *out = s;
    *out_len = n;
    return 0;
}

int ctl__dir_add(const char *text, size_t len, const ctl_entry_t *e, char **out, size_t *out_len,
                 char *err, size_t err_len)
{
    layout_t lo;
    int rc = parse_layout(text, len, NULL, &lo, err, err_len);
    if (rc != 0) return rc;
    if (lo.agents_flow && lo.n_items == 0) {
        /* `agents: []`, how a new territory starts: the line becomes `agents:` and the
         * entry goes under it (a comment after the brackets stays on the line). */
        size_t b = line_offset(text, len, lo.agents_line);
        size_t e2 = line_end_offset(text, len, lo.agents_line);
        const char *open = memchr(text + b, '[', e2 - b);
        const char *close = open ? memchr(open, ']', (size_t)(text + e2 - open)) : NULL;
        if (open != NULL && close != NULL) {
            char entry[4096];
            int rc2 = ctl__entry_format(e, 2, entry, sizeof entry, err, err_len);
            if (rc2 != 0) return rc2;
            size_t keep = (size_t)(open - text);
            while (keep > b && text[keep - 1] == ' ') keep--;
            size_t tail = (size_t)(close - text) + 1;
            char *first = NULL;
            size_t first_len = 0;
            /* text[0, keep) + text(close, e2) + entry + text[e2, len) */
            int rc3 = splice(text, len, keep, NULL, tail, &first, &first_len, err, err_len);
            if (rc3 != 0) return rc3;
            size_t at2 = line_end_offset(first, first_len, lo.agents_line);
            bool nl = at2 == first_len && first_len > 0 && first[first_len - 1] != '\n';
            char block[4200];
            snprintf(block, sizeof block, "%s%s", nl ? "\n" : "", entry);
            rc3 = splice(first, first_len, at2, block, at2, out, out_len, err, err_len);
            free(first);
            return rc3;
        }
    }
    if (lo.agents_flow)
        return set_err(err, err_len,
                       "line %zu: agents: is a flow list ([…]); write it as a block list, one "
                       "'- address: …' entry per agent, so that entries can be added",
                       lo.agents_line + 1);
    char entry[4096];
    /* Entries go where the list's own entries are; a new list is indented by two. */
    size_t indent = lo.n_items > 0 ? lo.first_dash_col : 2;
    rc = ctl__entry_format(e, indent, entry, sizeof entry, err, err_len);
    if (rc != 0) return rc;

    char block[4200];
    size_t at;
    if (!lo.has_agents) {
        bool nl = len > 0 && text[len - 1] != '\n';
        snprintf(block, sizeof block, "%s\nagents:\n%s", nl ? "\n" : "", entry);
        at = len;
    } else if (lo.n_items == 0) {
        /* `agents:` with nothing under it: the entry goes on the next line. */
        snprintf(block, sizeof block, "%s", entry);
        at = line_end_offset(text, len, lo.agents_line);
        if (at == len && len > 0 && text[len - 1] != '\n') {
            snprintf(block, sizeof block, "\n%s", entry);
        }
    } else {
        /* After the last entry's last line; separated by a blank line when the list
         * already separates its entries with blank lines. */
        at = line_end_offset(text, len, lo.last_end_line);
        bool blank_before = false;
        for (size_t l = lo.agents_line + 1; l < lo.last_end_line && !blank_before; l++) {
            size_t b = line_offset(text, len, l), e2 = line_end_offset(text, len, l);
            blank_before = e2 > b && strspn(text + b, " \t\r") >= e2 - b - 1;
        }
        bool nl = at == len && len > 0 && text[len - 1] != '\n';
        snprintf(block, sizeof block, "%s%s%s", nl ? "\n" : "", blank_before ? "\n" : "", entry);
    }
    return splice(text, len, at, block, at, out, out_len, err, err_len);
}

int ctl__dir_remove(const char *text, size_t len, const char *address, char **out, size_t *out_len,
                    char *err, size_t err_len)
{
    layout_t lo;
    int rc = parse_layout(text, len, address, &lo, err, err_len);
    if (rc != 0) return rc;
    if (!lo.found) return set_err(err, err_len, "no agent %s in the directory", address);
    size_t first = lo.found_dash_line;
    /* The comment `agent add` wrote above the entry goes with it; other comments stay, as
     * they may speak of the entries around. */
    if (first > 0) {
        size_t b = line_offset(text, len, first - 1);
        size_t ind = strspn(text + b, " ");
        if (strncmp(text + b + ind, "# " CTL_ENROLLED_COMMENT, strlen(CTL_ENROLLED_COMMENT) + 2) ==
            0)
            first--;
    }
    size_t from = line_offset(text, len, first);
    size_t to = line_end_offset(text, len, lo.found_end_line);
    /* A blank line that separated it from the previous entry goes too, so that removals do
     * not leave gaps growing in the file. */
    if (first > 0) {
        size_t prev = line_offset(text, len, first - 1);
        if (strspn(text + prev, " \t\r") >= from - prev - 1) from = prev;
    }
    if (lo.agents_flow)
        return set_err(err, err_len,
                       "line %zu: agents: is a flow list ([…]); remove the entry by hand",
                       lo.agents_line + 1);
    if (lo.n_items > 1) return splice(text, len, from, NULL, to, out, out_len, err, err_len);
    /* The last agent goes: `agents:` becomes `agents: []`, which the loader reads as an
     * empty territory (and agent add starts from), where nothing under it would not be. */
    size_t b = line_offset(text, len, lo.agents_line);
    size_t e2 = line_end_offset(text, len, lo.agents_line);
    const char *key = memmem(text + b, e2 - b, "agents", 6);
    const char *colon = key ? memchr(key, ':', (size_t)(text + e2 - key)) : NULL;
    if (colon == NULL)
        return set_err(err, err_len, "line %zu: agents: not found", lo.agents_line + 1);
    size_t at = (size_t)(colon - text) + 1;
    char *cut = NULL;
    size_t cut_len = 0;
    rc = splice(text, len, from, NULL, to, &cut, &cut_len, err, err_len);
    if (rc != 0) return rc;
    rc = splice(cut, cut_len, at, " []", at, out, out_len, err, err_len);
    free(cut);
    return rc;
}

bool ctl__luhn_valid(const char *digits)
{
    size_t n = strlen(digits);
    if (n == 0) return false;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        char c = digits[n - 1 - i];
        if (c < '0' || c > '9') return false;
        unsigned d = (unsigned)(c - '0');
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

/* The digit that makes digits + it pass Luhn. */
static char luhn_digit(const char *digits, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(digits[n - 1 - i] - '0');
        if (i % 2 == 0) { /* doubled: the check digit will take position 0 */
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
    }
    return (char)('0' + (10 - sum % 10) % 10);
}

int ctl__identifier_check(const char *address, char *reason, size_t reason_len)
{
    relais_address_t a;
    char why[RELAIS_REASON_MAX];
    if (relais_address_parse(address, &a, why, sizeof why) != 0)
        return set_err(reason, reason_len, "%s is not a valid address: %s", address, why);
    size_t n = strlen(a.id);
    const char *what = a.kind == RELAIS_ADDR_RPPS ? "RPPS" : "FINESS";
    if (a.kind != RELAIS_ADDR_RPPS && a.kind != RELAIS_ADDR_FINESS) return 0;
    /* Corsican FINESS numbers (2A/2B) are not pure digits; the registry's rule for their key
     * is not one our sources state, so they are accepted as the address parser allows. */
    if (a.kind == RELAIS_ADDR_FINESS && (a.id[1] == 'A' || a.id[1] == 'B')) return 0;
    if (!ctl__luhn_valid(a.id))
        return set_err(reason, reason_len,
                       "%s: the %s number's check digit is wrong (the last digit of %s is a Luhn "
                       "key; with these first %zu digits it would be %c): a typo?",
                       address, what, a.id, n - 1, luhn_digit(a.id, n - 1));
    return 0;
}
