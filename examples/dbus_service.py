#!/usr/bin/python3
"""A D-Bus service that takes a sealed memfd and answers with one: the peer of examples/dbus.ts.

org.memfd.Example at /org/memfd/Example, interface org.memfd.Example:
  Shout(h file) -> (h shouted, s saw)
    Reads `file` (refused unless sealed against writing, shrinking and growing: otherwise the caller could
    change or shrink it while we read), and answers with a new memfd holding the text in upper case, frozen
    the same way, plus a line about what it saw.

Runs with Debian's python3-dbus and python3-gi, which exist for /usr/bin/python3 only:
  /usr/bin/python3 examples/dbus_service.py [--address ADDRESS]   (default: the session bus)
Prints "ready <unique name>" on stdout once the name is owned; exits when the bus goes away or on SIGTERM.
"""
import fcntl
import os
import signal
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = 'org.memfd.Example'
PATH = '/org/memfd/Example'
FROZEN = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
REQUIRED = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
SEAL_NAMES = [(fcntl.F_SEAL_SEAL, 'seal'), (fcntl.F_SEAL_SHRINK, 'shrink'), (fcntl.F_SEAL_GROW, 'grow'),
              (fcntl.F_SEAL_WRITE, 'write'), (getattr(fcntl, 'F_SEAL_FUTURE_WRITE', 0x10), 'future-write'),
              (getattr(fcntl, 'F_SEAL_EXEC', 0x20), 'exec')]


class NotSealed(dbus.DBusException):
    _dbus_error_name = 'org.memfd.Example.Error.NotSealed'


def seal_names(bits):
    return '|'.join(name for bit, name in SEAL_NAMES if bits & bit) or 'none'


class Example(dbus.service.Object):
    @dbus.service.method(NAME, in_signature='h', out_signature='hs')
    def Shout(self, file):
        fd = file.take()  # the UnixFd's own copy of the fd, now ours to close
        try:
            try:
                seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            except OSError as e:
                raise NotSealed('the fd is not a sealable memfd: %s' % e)
            if seals & REQUIRED != REQUIRED:
                raise NotSealed('refusing a memfd sealed %s: it needs shrink|grow|write' % seal_names(seals))
            size = os.fstat(fd).st_size
            text = os.pread(fd, size, 0).decode('utf-8')
        finally:
            os.close(fd)

        shouted = text.upper().encode('utf-8')
        out = os.memfd_create('dbus-reply', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.write(out, shouted)
            fcntl.fcntl(out, fcntl.F_ADD_SEALS, FROZEN)
            # UnixFd duplicates the fd: dbus-python sends (and closes) its copy, we close ours.
            reply = dbus.types.UnixFd(out)
        finally:
            os.close(out)
        return reply, 'python read %d bytes sealed %s' % (size, seal_names(seals))


def main():
    address = sys.argv[sys.argv.index('--address') + 1] if '--address' in sys.argv else None
    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address) if address else dbus.SessionBus()
    loop = GLib.MainLoop()
    Example(bus, PATH)
    # Not dbus.service.BusName: its destructor releases the name with a blocking call, which fails noisily
    # once the bus is gone. The name goes with the connection anyway.
    if bus.request_name(NAME, dbus.bus.NAME_FLAG_DO_NOT_QUEUE) != dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER:
        sys.exit('%s is already owned on this bus' % NAME)
    bus.call_on_disconnection(lambda _bus: loop.quit())
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print('ready', bus.get_unique_name(), flush=True)
    loop.run()


if __name__ == '__main__':
    main()
