/** The D-Bus names, paths and interfaces the watcher talks to. */
export const DBUS = "org.freedesktop.DBus";
export const DBUS_PATH = "/org/freedesktop/DBus";
export const SYSTEMD = "org.freedesktop.systemd1";
export const SYSTEMD_PATH = "/org/freedesktop/systemd1";
export const MANAGER = "org.freedesktop.systemd1.Manager";
export const PROPERTIES = "org.freedesktop.DBus.Properties";
export const PEER = "org.freedesktop.DBus.Peer";
