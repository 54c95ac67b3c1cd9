/* Hexadecimal digits and UUID text (8-4-4-4-12). */
#ifndef VREV_CORE_HEX_H
#define VREV_CORE_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of the hex digit c (either case), or -1. */
int vrev__hex_digit(char c);

/* UUID text -> 16 bytes, strictly: the canonical 36-character form (8-4-4-4-12 hex digits with
 * dashes) or 32 hex digits, any case, nothing else. false when s is NULL or malformed (out is
 * then partly written). */
bool vrev__uuid_parse(const char *s, size_t len, uint8_t out[16]);

/* 16 bytes -> the canonical form, lower case, with its NUL (37 bytes). */
void vrev__uuid_format(const uint8_t uuid[16], char out[37]);

#endif
