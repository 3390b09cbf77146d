/* ere.h - POSIX extended regular expressions that come from
 * configuration (plan patterns, naming rules, channel rules), compiled
 * behind a guard: glibc's regcomp takes memory without limit on some
 * patterns a typo can produce. */
#ifndef MILEPOST_COMMON_ERE_H
#define MILEPOST_COMMON_ERE_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest pattern accepted, and largest {m,n} bound. */
#define ERE_MAX_LEN 512
#define ERE_MAX_BOUND 100

/* Compiles src into re with REG_EXTENDED | REG_NOSUB | extra_flags. False,
 * with a sentence saying why in msg (re then holds nothing to free), when
 * the pattern is refused (too long, a bound over ERE_MAX_BOUND, a
 * quantifier stacked on another) or invalid. */
bool ere_compile(regex_t *re, const char *src, int extra_flags, char *msg,
    size_t msg_size);

#endif
