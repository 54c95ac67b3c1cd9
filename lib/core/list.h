/* Doubly linked lists threaded through the elements' own `next` and `prev` pointers (any
 * struct with both). The macros evaluate their arguments more than once: pass plain lvalues. */
#ifndef VREV_CORE_LIST_H
#define VREV_CORE_LIST_H

#include <stddef.h>

/* A ring around a sentinel element s, which points at itself when the ring is empty. */
#define VREV__RING_PUSH_FRONT(s, x)                                                                \
    do {                                                                                           \
        (x)->next = (s)->next;                                                                     \
        (x)->prev = (s);                                                                           \
        (s)->next->prev = (x);                                                                     \
        (s)->next = (x);                                                                           \
    } while (0)

#define VREV__RING_PUSH_BACK(s, x)                                                                 \
    do {                                                                                           \
        (x)->next = (s);                                                                           \
        (x)->prev = (s)->prev;                                                                     \
        (s)->prev->next = (x);                                                                     \
        (s)->prev = (x);                                                                           \
    } while (0)

/* Take x out of its ring (its own pointers are left as they were). */
#define VREV__RING_REMOVE(x)                                                                       \
    do {                                                                                           \
        (x)->prev->next = (x)->next;                                                               \
        (x)->next->prev = (x)->prev;                                                               \
    } while (0)

/* A list from a head pointer (NULL: empty), NULL-terminated both ways: x goes first. */
#define VREV__LIST_PUSH(head, x)                                                                   \
    do {                                                                                           \
        (x)->prev = NULL;                                                                          \
        (x)->next = (head);                                                                        \
        if ((x)->next)                                                                             \
            (x)->next->prev = (x);                                                                 \
        (head) = (x);                                                                              \
    } while (0)

/* Take x out of the list at head (its own pointers are left as they were). */
#define VREV__LIST_REMOVE(head, x)                                                                 \
    do {                                                                                           \
        if ((x)->prev)                                                                             \
            (x)->prev->next = (x)->next;                                                           \
        else                                                                                       \
            (head) = (x)->next;                                                                    \
        if ((x)->next)                                                                             \
            (x)->next->prev = (x)->prev;                                                           \
    } while (0)

#endif
