/**
 * weft.h - the umbrella header: a work-stealing task executor with futures.
 *
 *   weft/common.h  export macros, version, weft_now() and deadlines
 *   weft/pool.h    worker pools: create, shutdown, destroy
 *   weft/task.h    submitting tasks
 *   weft/future.h  futures, callbacks, continuations, when_all/when_any,
 *                  as_completed
 *   weft/map.h     parallel for and map
 *   weft/async.h   inside tasks: fork/join, yield, sleep, cancel shields
 *   weft/group.h   task groups (structured concurrency), task-local values
 *   weft/sync.h    mutex, condition variable, semaphore, event, wait group,
 *                  channel: they suspend tasks and block threads
 *
 * Start with docs/executor.md.
 */
#ifndef WEFT_H
#define WEFT_H

#include "weft/common.h"
#include "weft/pool.h"
#include "weft/task.h"
#include "weft/future.h"
#include "weft/map.h"
#include "weft/async.h"
#include "weft/group.h"
#include "weft/sync.h"
#include "weft/io.h"
#include "weft/obs.h"

#endif /* WEFT_H */
