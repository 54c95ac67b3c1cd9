/* Milliseconds as a struct timeval (for evtimer_add and timeradd). */
#ifndef VREV_CORE_TIMEVAL_H
#define VREV_CORE_TIMEVAL_H

#include <stdint.h>
#include <sys/time.h>

static inline struct timeval vrev__ms_to_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    return tv;
}

#endif
