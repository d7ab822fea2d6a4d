/*
 * Rows of typed cells rendered either as JSON (for --json, the dashboard and scripts) or
 * as an aligned text table (relaisctl's default), so each API endpoint gathers its data
 * once and both views always agree.
 *
 * Cells are kept as strings: a number's decimal form, a time as milliseconds since the
 * epoch. The column's kind decides how each view shows it: quoted or bare in JSON, a UTC
 * date or a duration in text. Text cells are printed with anything non-printable replaced,
 * so no byte from an agent can drive a terminal.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "table.h"

void table_init(table_t *t, const table_col_t *cols, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->cols = cols;
    t->ncols = ncols;
}

void table_add(table_t *t, ...)
{
    if (t->oom) return;
    if (t->nrows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        char **n = realloc(t->cells, ncap * t->ncols * sizeof(char *));
        if (n == NULL) {
            t->oom = true;
            return;
        }
        t->cells = n;
        t->cap = ncap;
    }
    va_list ap;
    va_start(ap, t);
    char **row = &t->cells[t->nrows * t->ncols];
    for (size_t c = 0; c < t->ncols; c++) {
        const char *v = va_arg(ap, const char *);
        row[c] = strdup(v ? v : "");
        if (row[c] == NULL) t->oom = true;
    }
    va_end(ap);
    t->nrows++;
}

void table_free(table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

char *table_num(char buf[32], long long v)
{
    snprintf(buf, 32, "%lld", v);
    return buf;
}

static void json_cell(abuf_t *o, const table_col_t *col, const char *v)
{
    switch (col->kind) {
    case COL_INT:
        abuf_puts(o, v[0] ? v : "0");
        break;
    case COL_TIME: /* 0 or empty: no such time */
        abuf_puts(o, v[0] == '\0' || strcmp(v, "0") == 0 ? "null" : v);
        break;
    case COL_AGE: /* empty: unknown; 0 is an age */
        abuf_puts(o, v[0] == '\0' ? "null" : v);
        break;
    case COL_BOOL:
        abuf_puts(o, strcmp(v, "1") == 0 ? "true" : "false");
        break;
    default:
        if (v[0] == '\0' && col->kind == COL_OPTSTR)
            abuf_puts(o, "null");
        else
            abuf_json_str(o, v);
    }
}

static void json_row(abuf_t *o, const table_t *t, size_t r)
{
    abuf_puts(o, "{");
    for (size_t c = 0; c < t->ncols; c++) {
        if (c) abuf_puts(o, ",");
        abuf_json_str(o, t->cols[c].name);
        abuf_puts(o, ":");
        json_cell(o, &t->cols[c], t->cells[r * t->ncols + c]);
    }
    abuf_puts(o, "}");
}

/* The text view of one cell, into buf. */
static const char *text_cell(const table_col_t *col, const char *v, char *buf, size_t n)
{
    long long x = strtoll(v, NULL, 10);
    switch (col->kind) {
    case COL_TIME: {
        if (x == 0) return "-";
        time_t s = (time_t)(x / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm);
        return buf;
    }
    case COL_AGE: {
        if (v[0] == '\0') return "-";
        long long sec = x / 1000;
        if (sec < 60)
            snprintf(buf, n, "%llds", sec);
        else if (sec < 3600)
            snprintf(buf, n, "%lldm%02llds", sec / 60, sec % 60);
        else if (sec < 86400)
            snprintf(buf, n, "%lldh%02lldm", sec / 3600, sec / 60 % 60);
        else
            snprintf(buf, n, "%lldd%02lldh", sec / 86400, sec / 3600 % 24);
        return buf;
    }
    case COL_BOOL:
        return strcmp(v, "1") == 0 ? "yes" : "no";
    default: {
        size_t i = 0;
        for (; v[i] && i + 1 < n; i++)
            buf[i] = (unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f ? '?' : v[i];
        buf[i] = '\0';
        return buf[0] ? buf : "-";
    }
    }
}

/* A column's name for people: without the unit suffix JSON needs ("_ms"), upper-case in
 * table headers. */
static void header_name(const char *name, char *out, size_t n, bool upper)
{
    size_t len = strlen(name);
    if (len > 3 && strcmp(name + len - 3, "_ms") == 0) len -= 3;
    size_t i = 0;
    for (; i < len && i + 1 < n; i++)
        out[i] = name[i] == '_' && upper ? ' ' : upper ? (char)(name[i] & ~0x20) : name[i];
    out[i] = '\0';
}

void table_json_array(const table_t *t, abuf_t *o)
{
    abuf_puts(o, "[");
    for (size_t r = 0; r < t->nrows; r++) {
        if (r) abuf_puts(o, ",");
        json_row(o, t, r);
    }
    abuf_puts(o, "]");
}

void table_render(const table_t *t, const char *list_name, const char *next, bool text, abuf_t *o)
{
    if (!text) {
        abuf_puts(o, "{");
        abuf_json_str(o, list_name);
        abuf_puts(o, ":");
        table_json_array(t, o);
        abuf_puts(o, ",\"next\":");
        if (next && next[0])
            abuf_json_str(o, next);
        else
            abuf_puts(o, "null");
        abuf_puts(o, "}\n");
        return;
    }
    if (t->nrows == 0) {
        abuf_printf(o, "(no %s)\n", list_name);
        return;
    }
    size_t width[TABLE_MAX_COLS] = {0};
    char buf[256];
    for (size_t c = 0; c < t->ncols && c < TABLE_MAX_COLS; c++) {
        char name[64];
        header_name(t->cols[c].name, name, sizeof(name), true);
        width[c] = strlen(name);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = strlen(text_cell(&t->cols[c], t->cells[r * t->ncols + c], buf, sizeof buf));
            if (w > width[c]) width[c] = w;
        }
    }
    for (size_t c = 0; c < t->ncols && c < TABLE_MAX_COLS; c++) {
        char up[64];
        header_name(t->cols[c].name, up, sizeof(up), true);
        bool last = c + 1 == t->ncols, right = t->cols[c].kind == COL_INT;
        abuf_printf(o, right ? "%*s%s" : "%-*s%s", last && !right ? 0 : (int)width[c], up,
                    last ? "\n" : "  ");
    }
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols && c < TABLE_MAX_COLS; c++) {
            const char *v = text_cell(&t->cols[c], t->cells[r * t->ncols + c], buf, sizeof buf);
            bool right = t->cols[c].kind == COL_INT;
            bool last = c + 1 == t->ncols;
            abuf_printf(o, right ? "%*s%s" : "%-*s%s", last && !right ? 0 : (int)width[c], v,
                        last ? "\n" : "  ");
        }
    if (next && next[0]) abuf_printf(o, "(more: --next %s)\n", next);
}

void table_render_object(const table_t *t, bool text, abuf_t *o)
{
    char buf[256];
    if (!text) {
        if (t->nrows)
            json_row(o, t, 0);
        else
            abuf_puts(o, "{}");
        return;
    }
    size_t w = 0;
    char name[64];
    for (size_t c = 0; c < t->ncols; c++)
        if (strlen(t->cols[c].name) > w) w = strlen(t->cols[c].name);
    for (size_t c = 0; t->nrows && c < t->ncols; c++) {
        header_name(t->cols[c].name, name, sizeof(name), false);
        abuf_printf(o, "%-*s  %s\n", (int)w, name,
                    text_cell(&t->cols[c], t->cells[c], buf, sizeof buf));
    }
}
