/*
 * merger_apply.h -- applying one event to the session's trace map and
 * current/peak counters (owner: ENGINE-FLOW).  Shared by the two orders'
 * mergers (merger.c: counter order; merger_clock.c: clock order).
 *
 * Threads: the apply-lock holder only; it is the caller's job to call it in
 * the order (sequence.h / order_clock.h), once per event.
 */
#ifndef FTM_CORE_MERGER_APPLY_H
#define FTM_CORE_MERGER_APPLY_H

#include "merger.h"
#include "trace_map.h"

static inline void ftm_merger_apply_one(ftm_merger *m, const ftm_event *e)
{
    size_t old = 0;
    if (m->observer != NULL) {
        m->observer(e, m->observer_arg);
    }
    switch (e->kind) {
    case FTM_EV_ALLOC: {
        bool had = false;
        ftm_tb_id tb = e->tb == FTM_TB_NONE ? FTM_TB_NONE : e->tb + m->tb_base;
        size_t size = (size_t)e->size;
        if (ftm_trace_map_put(m->map, e->domain, (uintptr_t)e->ptr, size, tb,
                              &had, &old) == FTM_OK) {
            if (had) {
                m->current -= old;
            }
            m->current += size;
            if (m->current > m->peak) {
                m->peak = m->current;
            }
        } else {
            /* Out of engine memory: the block is untraced (counted); a
             * stale trace at the same address must not survive it. */
            m->traces_lost_oom++;
            if (ftm_trace_map_remove(m->map, e->domain, (uintptr_t)e->ptr,
                                     &old)) {
                m->current -= old;
            }
        }
        break;
    }
    case FTM_EV_FREE:
        if (ftm_trace_map_remove(m->map, e->domain, (uintptr_t)e->ptr, &old)) {
            m->current -= old;
        }
        break;
    case FTM_EV_RETRACE: {
        /* A block reused without a new allocation: re-stamp its trace if
         * it has one.  No insert (an untraced block's size is unknown, and
         * a retrace ordered after a free must not resurrect the trace), no
         * size change, hence current and peak untouched. */
        ftm_tb_id tb = e->tb == FTM_TB_NONE ? FTM_TB_NONE : e->tb + m->tb_base;
        (void)ftm_trace_map_set_tb(m->map, e->domain, (uintptr_t)e->ptr, tb);
        break;
    }
    default: /* NOP */
        break;
    }
}

#endif /* FTM_CORE_MERGER_APPLY_H */
