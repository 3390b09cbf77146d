/* bigmem.c - scratch arrays too big for malloc's heap (bigmem.h). */
#define _DEFAULT_SOURCE
#include "common/bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* glibc's largest mmap threshold: blocks past it are mappings of their
 * own, which the advice cannot spill over from. */
#define BIGMEM_MAPPED (32u << 20)
#define BIGMEM_HUGE_PAGE ((uintptr_t)2 << 20)

void *
bigmem_realloc(void *p, size_t bytes)
{
	void *q = realloc(p, bytes > 0 ? bytes : 1);

#ifdef MADV_HUGEPAGE
	if (q != NULL && bytes >= BIGMEM_MAPPED) {
		/* Only whole huge pages inside the block. */
		uintptr_t from = ((uintptr_t)q + BIGMEM_HUGE_PAGE - 1) &
		    ~(BIGMEM_HUGE_PAGE - 1);
		uintptr_t to = ((uintptr_t)q + bytes) & ~(BIGMEM_HUGE_PAGE - 1);
		if (to > from) {
			(void)madvise((void *)from, to - from, MADV_HUGEPAGE);
		}
	}
#endif
	return q;
}
