"""Circus stream classes for Conductor (written here by the conductor binary).

circus reads a process's output 1024 bytes at a time and its FileStream puts
a time and pid prefix and a newline on each read. A line that arrives in
pieces -- Python with PYTHONUNBUFFERED writes print()'s text and its newline
separately, and any line longer than 1024 bytes is read in pieces -- ends up
as several lines in the file, and `conductor logs` shows them broken.

LineFileStream hands FileStream whole lines only. The unfinished end of a
process's output waits, per pid, for its newline; it is written as it is once
it reaches MAX_PENDING bytes or after STALE seconds without its newline (a
prompt, a crash in the middle of a line), so nothing is held back for long.

It also names each line's process: `conductor run-process` first prints
"conductor: starting web.1 (pid 1234): ..." (process.StartLinePrefix), and
from then on the stream writes "[1234 web.1]" where FileStream writes
"[1234]". Every line carries its name, so a log file that rotated past the
start line still says which process wrote it.
"""

import os
import re
import stat
import time

from tornado import ioloop

from circus.stream.file_stream import FileStream


START_LINE = re.compile(rb'^conductor: starting ([a-z][a-z0-9_]*\.[0-9]+) \(pid ([0-9]+)\)', re.M)


class LineFileStream(FileStream):
    MAX_PENDING = 64 * 1024
    STALE = 1.0
    MAX_NAMES = 1000  # pids remembered; a pid restarted by circus is new

    def _open(self):
        # circusd runs as root and the log file's name is in the app's
        # project dir: never follow a link planted there (O_NOFOLLOW), never
        # block on a FIFO (O_NONBLOCK), write only a regular file. The file
        # takes the directory's group (the app's), so the app reads its logs
        # and no other app does.
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(self._filename, flags, 0o640)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError('%s is not a regular file' % self._filename)
            os.set_blocking(fd, True)
            if os.geteuid() == 0 and st.st_uid == 0:
                dir_gid = os.stat(os.path.dirname(self._filename) or '.').st_gid
                if st.st_gid != dir_gid:
                    os.fchown(fd, -1, dir_gid)
                os.fchmod(fd, 0o640)
            return os.fdopen(fd, 'a+')
        except BaseException:
            os.close(fd)
            raise

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending = {}  # pid -> (unfinished bytes, monotonic time of its start)
        self._names = {}  # pid -> b"web.1", in the order learned
        self._timer = None

    def __call__(self, data):
        pid = data['pid']
        now = time.monotonic()
        buf, since = self._pending.pop(pid, (b'', now))
        buf += data['data']
        cut = buf.rfind(b'\n') + 1
        if len(buf) - cut >= self.MAX_PENDING:
            cut = len(buf)
        if cut:
            self._write(pid, buf[:cut])
            since = now
        if cut < len(buf):
            self._pending[pid] = (buf[cut:], since)
            self._schedule()

    def _write(self, pid, raw):
        for m in START_LINE.finditer(raw):
            if int(m.group(2)) == pid:
                self._names.pop(pid, None)
                self._names[pid] = m.group(1).decode()
                while len(self._names) > self.MAX_NAMES:
                    del self._names[next(iter(self._names))]
        name = self._names.get(pid)
        label = '%d %s' % (pid, name) if name else pid
        FileStream.__call__(self, {'data': raw, 'pid': label})

    def _schedule(self):
        if self._timer is None:
            self._timer = ioloop.IOLoop.current().call_later(self.STALE, self._flush_stale)

    def _flush_stale(self):
        self._timer = None
        now = time.monotonic()
        for pid, (buf, since) in list(self._pending.items()):
            if now - since >= self.STALE:
                del self._pending[pid]
                self._write(pid, buf)
        if self._pending:
            self._schedule()

    def close(self):
        if self._timer is not None:
            ioloop.IOLoop.current().remove_timeout(self._timer)
            self._timer = None
        for pid, (buf, _) in list(self._pending.items()):
            self._write(pid, buf)
        self._pending.clear()
        super().close()

