"""Circus watcher hooks for Conductor (written here by the conductor binary).

A module of its own, apart from conductor_circus: circusd imports a module
once, so a circusd adopted across an upgrade of Conductor (it outlives the
control plane) keeps the conductor_circus it first imported. A watcher that
names a hook this module did not have would fail to load; give a changed
hook a new name (or module) for that reason.
"""

import faulthandler
import os
import signal
import sys

# SIGUSR2 makes circusd write every thread's Python stack to its stderr
# (circusd.log), even with its event loop stuck: Conductor sends it when
# circusd stops answering, so the log says where it is.
try:
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True, chain=False)
except (AttributeError, ValueError, OSError):
    pass


# The signals that stop a process (stop_signal, circus's kill after the
# graceful timeout, a Ctrl-C).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGKILL})


def signal_group(watcher, arbiter, hook_name, pid=None, signum=None, **kwargs):
    """before_signal hook: a stop signal circus sends a process goes to its
    whole process group too, as Heroku stops every process of a dyno.

    circus makes each process lead its own session, and stop_children
    reaches only its direct children: in `web: test -n "$PORT" && bash
    start.sh` gunicorn is a grandchild of the process circus knows, and
    would run on, holding the port, until the watcher's cgroup or session
    is killed after the graceful timeout. Other signals (a HUP to reload)
    stay the process's own. Returns True: circus signals the process too.
    """
    if signum in STOP_SIGNALS and pid:
        try:
            if os.getpgid(pid) == pid:  # never circusd's own group
                os.killpg(pid, signum)
        except OSError:
            pass  # gone already
    return True
