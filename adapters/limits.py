"""Process limits a process with many MQTT clients raises: open files, one socket per client."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)


def raise_fd_limit(want: int) -> int:
    """Raise this process's soft limit on open files towards `want` (at most the hard limit).

    Every device holds one socket, so 5,000 devices need more than the usual soft limit of
    1,024; children (a broker started from here) inherit the new limit. Returns the limit now.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                log.warning("could not raise the open-files limit from %d to %d", soft, target)
    if soft != resource.RLIM_INFINITY and soft < want:
        log.warning("open-files limit %d is below the %d this street needs (ulimit -n)", soft, want)
    return int(soft)
