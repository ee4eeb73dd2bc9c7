"""The daemon process: lifecycle, lock, watcher, control socket, sd_notify, status contract."""
