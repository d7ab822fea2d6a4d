/*
 * Intrusive doubly-linked lists for the broker.
 *
 * A list node lives inside the object it links (a delivery sits in its mailbox queue and in
 * its session's in-flight list at once), so moving an object between lists never
 * allocates. The head is a sentinel node: an empty list points to itself.
 */
#ifndef RELAIS_BROKER_LIST_H
#define RELAIS_BROKER_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node_t;

#define LIST_ENTRY(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

static inline void list_init(list_node_t *head)
{
    head->prev = head->next = head;
}

static inline bool list_empty(const list_node_t *head)
{
    return head->next == head;
}

/* A node not in any list points to itself (after list_init or list_remove). */
static inline bool list_linked(const list_node_t *node)
{
    return node->next != node;
}

static inline void list_insert_after(list_node_t *pos, list_node_t *node)
{
    node->prev = pos;
    node->next = pos->next;
    pos->next->prev = node;
    pos->next = node;
}

static inline void list_push_back(list_node_t *head, list_node_t *node)
{
    list_insert_after(head->prev, node);
}

static inline void list_push_front(list_node_t *head, list_node_t *node)
{
    list_insert_after(head, node);
}

static inline void list_remove(list_node_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}

static inline list_node_t *list_first(const list_node_t *head)
{
    return list_empty(head) ? NULL : head->next;
}

#define LIST_FOREACH_SAFE(pos, tmp, head)                                                          \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif /* RELAIS_BROKER_LIST_H */
