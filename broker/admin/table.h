/*
 * Typed rows rendered as JSON or as an aligned text table (table.c).
 */
#ifndef RELAIS_ADMIN_TABLE_H
#define RELAIS_ADMIN_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

#define TABLE_MAX_COLS 24

typedef enum col_kind {
    COL_STR,
    COL_OPTSTR, /* null in JSON when empty */
    COL_INT,
    COL_TIME, /* ms since the epoch; JSON: the number, text: UTC date; 0: none */
    COL_AGE,  /* ms; JSON: the number, text: 3m12s; empty: none */
    COL_BOOL, /* "1" or "0" */
} col_kind_t;

typedef struct table_col {
    const char *name;
    col_kind_t kind;
} table_col_t;

typedef struct table {
    const table_col_t *cols;
    size_t ncols;
    char **cells;
    size_t nrows, cap;
    bool oom;
} table_t;

void table_init(table_t *t, const table_col_t *cols, size_t ncols);
/* Adds a row: exactly ncols const char * arguments (NULL: empty). */
void table_add(table_t *t, ...);
void table_free(table_t *t);
/* v in decimal, in buf; returns buf. */
char *table_num(char buf[32], long long v);

/* {"list_name":[rows…],"next":next|null}, or the aligned table with a header. */
void table_render(const table_t *t, const char *list_name, const char *next, bool text, abuf_t *o);
/* The rows as a JSON array. */
void table_json_array(const table_t *t, abuf_t *o);
/* The first row as one JSON object, or as "name  value" lines. */
void table_render_object(const table_t *t, bool text, abuf_t *o);

#endif /* RELAIS_ADMIN_TABLE_H */
