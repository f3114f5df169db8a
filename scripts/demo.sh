#!/usr/bin/env bash
# Start the demo: embedded SQLite database, demo programme and members, server on :8000.
# Extra arguments go to `kopilka demo` (e.g. --port 8080, --members 1000).
source "$(dirname "$0")/_venv.sh"
exec kopilka demo "$@"
