/* bigmem.h - scratch arrays too big for malloc's heap.
 *
 * glibc maps every block over 32 MiB afresh (its mmap threshold cannot
 * go higher), so a query's big scratch is new memory each time, and each
 * first touch of a 4 KiB page is a page fault: at 21.6 M events a funnel
 * took 14,000 of them, a third of its time on a virtual machine where a
 * fault is dear. Such blocks ask the kernel for transparent huge pages
 * (MADV_HUGEPAGE), one fault per 2 MiB. Where the kernel has them off,
 * nothing changes. */
#ifndef MILEPOST_COMMON_BIGMEM_H
#define MILEPOST_COMMON_BIGMEM_H

#include <stddef.h>

/* realloc(p, bytes), the block then marked for huge pages when it is
 * that big; free it with free(). NULL when out of memory (p untouched). */
void *bigmem_realloc(void *p, size_t bytes);

#endif
