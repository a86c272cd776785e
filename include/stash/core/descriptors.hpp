// Sizing the process's file descriptor table up front.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace stash {

/** Grows the process's file descriptor table to hold `n` descriptors (capped at RLIMIT_NOFILE's
    soft limit) by duplicating one to the highest number and closing it again; the table never
    shrinks. Call it while the process has a single thread.

    Why: Linux grows the table (64, 128, 256, ... entries) when a descriptor past its end is opened,
    and in a process with several threads each growth waits for an RCU grace period
    (fs/file.c, expand_fdtable) in the thread that opens it: 10-16 ms of a restore worker's time at
    a time on the project's machine, where backup holds up to ~400 descriptors and restore up to
    1,100. With one thread there is no wait. Best effort: nothing is reported. */
inline void reserve_descriptors(int n) noexcept {
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    int const top = int(std::min<rlim_t>(rl.rlim_cur, rlim_t(n))) - 1;
    if (top < 3 || ::fcntl(top, F_GETFD) != -1) return;  // (never replace a descriptor in use)
    for (int fd = 0; fd < 3; ++fd)
        if (::dup2(fd, top) == top) return void(::close(top));
}

}  // namespace stash
